'use strict';
// The socket-directory rule: the cases of config/socketdir.json, which the
// Go side's config/main_test.go checks too, against this implementation;
// and the packaged copy of the rule is the repository's file.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { applySocketDirRule, socketDirRule, privateDir, checkPrivateDir } = require('../dist/socketdir.js');
const { resolveSocketDir, socketPath } = require('..');
const { REPO } = require('./helpers');

const file = JSON.parse(fs.readFileSync(path.join(REPO, 'config/socketdir.json'), 'utf8'));

test('the packaged rule is the repository file', () => {
  assert.deepEqual(socketDirRule(), file.rule);
  assert.equal(fs.readFileSync(path.join(__dirname, '..', 'dist', 'socketdir.json'), 'utf8'), fs.readFileSync(path.join(REPO, 'config/socketdir.json'), 'utf8'));
});

for (const c of file.cases) {
  test(`case ${c.name}`, () => {
    assert.equal(applySocketDirRule(socketDirRule(), c.option, c.env, c.euid, c.private), c.want);
  });
}

test('resolveSocketDir reads the environment at each call', (t) => {
  const saved = process.env.NETCLUSTER_SOCKETDIR;
  t.after(() => {
    if (saved === undefined) delete process.env.NETCLUSTER_SOCKETDIR;
    else process.env.NETCLUSTER_SOCKETDIR = saved;
  });
  process.env.NETCLUSTER_SOCKETDIR = '/first';
  assert.equal(resolveSocketDir(), '/first');
  process.env.NETCLUSTER_SOCKETDIR = '/second';
  assert.equal(resolveSocketDir(), '/second');
  assert.equal(resolveSocketDir('/mine'), '/mine');
  delete process.env.NETCLUSTER_SOCKETDIR;
  const d = resolveSocketDir();
  if (process.geteuid() === 0) assert.equal(d, '/var/run');
  else assert.equal(d, process.env.XDG_RUNTIME_DIR || path.join(os.tmpdir(), 'netcluster-' + process.geteuid()));
  assert.equal(socketPath('/d', 'A'), '/d/netcluster-A');
});

test('the private directory: per user, and refused when not private', (t) => {
  assert.equal(privateDir(), path.join(os.tmpdir(), 'netcluster-' + process.geteuid()));
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ncn-priv-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  fs.chmodSync(d, 0o700);
  assert.equal(checkPrivateDir(d), null);
  assert.equal(checkPrivateDir(path.join(d, 'missing')), null);
  fs.chmodSync(d, 0o755);
  assert.match(checkPrivateDir(d), /mode 0755; the private directory must be 0700/);
  fs.writeFileSync(path.join(d, 'f'), '');
  assert.match(checkPrivateDir(path.join(d, 'f')), /is not a directory/);
});
