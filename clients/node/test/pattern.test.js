'use strict';
// Listener patterns: the shared table (testdata/patterns.json, also checked
// against RE2 by node_test.go), and refusal at on().
const test = require('node:test');
const assert = require('node:assert/strict');
const { compilePattern, PatternError, Agent } = require('..');
const table = require('./testdata/patterns.json');

for (const c of table.accept) {
  test(`accept ${JSON.stringify(c.pattern)}`, () => {
    const re = compilePattern(c.pattern);
    for (const s of c.match) assert.ok(re.test(s), `${JSON.stringify(s)} should match`);
    for (const s of c.nomatch) assert.ok(!re.test(s), `${JSON.stringify(s)} should not match`);
  });
}

for (const c of table.reject) {
  test(`refuse ${JSON.stringify(c.pattern)}`, () => {
    assert.throws(
      () => compilePattern(c.pattern),
      (e) => {
        assert.ok(e instanceof PatternError, String(e));
        assert.equal(e.code, 'NC_BAD_PATTERN');
        assert.ok(e.message.includes(c.reason), `${e.message} should say ${c.reason}`);
        assert.ok(e.message.includes(JSON.stringify(c.pattern)), 'names the pattern');
        return true;
      },
    );
  });
}

test('on() refuses a pattern outside the subset, before the server sees it', () => {
  const a = new Agent();
  assert.throws(() => a.on('(?=x)', () => {}), PatternError);
  assert.throws(() => a.once('\\p{L}', () => {}), PatternError);
  assert.throws(() => a.listen('[[:digit:]]'), PatternError);
  assert.throws(() => a.on(/log/, () => {}), /pass its \.source/);
});
