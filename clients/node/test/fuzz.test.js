'use strict';
// Property checks of the decoders on random input: the frame reader and
// the Msg decoder either give frames or throw a WireError naming the
// problem, never anything else, and never read past what they were given.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const wire = require('../dist/wire.js');

function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

test('random bytes: frames or a WireError', () => {
  const rnd = rng(7);
  for (let i = 0; i < 3000; i++) {
    const buf = crypto.randomBytes(rnd(64));
    // Small lengths make whole frames likely.
    if (buf.length >= 4 && rnd(2)) buf.writeUInt32BE(rnd(buf.length), 0);
    const frames = [];
    const r = new wire.FrameReader(1 << 20, (t, b, s, e) => {
      assert.ok(s >= 0 && s <= e && e <= b.length, 'payload bounds inside the buffer');
      frames.push(t);
    });
    try {
      for (let off = 0; off < buf.length; off += 1 + rnd(7)) r.push(buf.subarray(off, off + 1 + rnd(7)));
    } catch (e) {
      assert.ok(e instanceof wire.WireError, String(e));
    }
  }
});

test('random Msg payloads: a message or a WireError', () => {
  const rnd = rng(11);
  const dec = new wire.MsgDecoder();
  for (let i = 0; i < 5000; i++) {
    const p = crypto.randomBytes(rnd(40));
    for (const [k, v] of [
      [1, rnd(6)],
      [3, rnd(6)],
    ])
      if (p.length > k) p[k] = v;
    try {
      const m = dec.decode(p, 0, p.length);
      assert.equal(typeof m.event, 'string');
      assert.ok(m.data.length <= p.length);
      // The slow path agrees with the fast one.
      const slow = wire.parseMsg(p);
      assert.deepEqual({ ...slow, data: Buffer.from(slow.data) }, { ...m, data: Buffer.from(m.data) });
    } catch (e) {
      assert.ok(e instanceof wire.WireError, String(e));
      assert.throws(() => wire.parseMsg(p), wire.WireError, 'both decoders refuse it');
    }
  }
});

test('encode then decode gives back every Msg', () => {
  const rnd = rng(3);
  const str = (n) => Array.from({ length: n }, () => String.fromCodePoint([0x61 + rnd(26), 0xe9, 0x1f600, 0x2d][rnd(4)])).join('');
  const dec = new wire.MsgDecoder();
  for (let i = 0; i < 2000; i++) {
    const m = { flags: rnd(256), channel: str(rnd(5)), agent: str(rnd(5)), node: str(rnd(3)), event: str(1 + rnd(6)), data: crypto.randomBytes(rnd(20)) };
    const f = wire.encodeMsg(m);
    const got = dec.decode(f, 5, f.length);
    assert.deepEqual({ ...got, data: Buffer.from(got.data) }, m);
  }
});
