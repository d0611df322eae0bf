'use strict';
// The Go library's delivery and routing cases (routing_test.go,
// delivery_test.go, listener_test.go) that apply to this client, against a
// real ncserver.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Agent, NCAgent } = require('..');
const { startServer, connect, listen, recorder, until } = require('./helpers');

// The seed README's sample, network off: A and B propagate to ".*".
const seed = {
  channels: {
    control: { propagatetochannels: false },
    A: { propagatetochannels: '.*' },
    B: { propagatetochannels: '.*' },
  },
};

const names = (msgs) => msgs.filter((m) => m.event !== 'end').map((m) => `${m.event}@${m.channel}`).sort();

test('NCAgent is Agent', () => {
  assert.equal(NCAgent, Agent);
});

test('seed topology: exactly once, own messages in memory only', async (t) => {
  const srv = await startServer(t, seed);
  const agents = {
    a1: await connect(t, srv, 'A'),
    a2: await connect(t, srv, 'A'),
    b1: await connect(t, srv, 'B'),
    c1: await connect(t, srv, 'control'),
  };
  const recs = {};
  for (const [n, a] of Object.entries(agents)) recs[n] = await listen(a, '.*');
  for (const [from, ev] of [
    ['a1', 'fromA'],
    ['b1', 'fromB'],
    ['c1', 'fromControl'],
  ]) {
    agents[from].emit(ev, 1);
    agents[from].emit('end', null);
  }
  const want = {
    a1: ['fromA@A', 'fromB@B'],
    a2: ['fromA@A', 'fromB@B'],
    b1: ['fromA@A', 'fromB@B'],
    c1: ['fromA@A', 'fromB@B', 'fromControl@control'],
  };
  for (const [n, r] of Object.entries(recs)) {
    const ends = n === 'c1' ? 3 : 2;
    await until(() => r.msgs.filter((m) => m.event === 'end').length >= ends, `${n}: ${ends} end markers`);
    for (const a of Object.values(agents)) await a.flush();
    assert.deepEqual(names(r.msgs), want[n], n);
    for (const m of r.msgs) {
      const own = m.agent === agents[n].id;
      assert.equal(m.local, own, `${n}: ${m.event} from ${m.agent} local=${m.local}`);
      assert.equal(m.node, '');
    }
  }
});

test('propagation is anchored and one hop', async (t) => {
  const srv = await startServer(t, {
    channels: { A: { propagatetochannels: 'B' }, B: { propagatetochannels: 'C' }, BB: {}, C: {} },
  });
  const src = await connect(t, srv, 'A');
  const recs = {};
  for (const ch of ['A', 'B', 'BB', 'C']) recs[ch] = await listen(await connect(t, srv, ch), '.*');
  src.emit('hop', 'x');
  await src.flush();
  await recs.A.wait(1);
  await recs.B.wait(1);
  // A marker through B and C proves nothing else is on its way.
  const b = await connect(t, srv, 'B');
  b.emit('mark', null);
  await b.flush();
  await recs.C.wait(1);
  const bb = await connect(t, srv, 'BB');
  bb.emit('mark', null);
  await recs.BB.wait(1);
  assert.deepEqual(names(recs.A.msgs), ['hop@A']);
  assert.deepEqual(names(recs.B.msgs), ['hop@A', 'mark@B']);
  assert.deepEqual(names(recs.BB.msgs), ['mark@BB'], 'A propagates to "B", anchored: not to "BB"');
  assert.deepEqual(names(recs.C.msgs), ['mark@B'], 'one hop: A → B does not go on to C');
});

test('the server sends only what the agent listens to', async (t) => {
  const srv = await startServer(t, { channels: { A: {} } });
  const src = await connect(t, srv, 'A');
  const dst = await connect(t, srv, 'A');
  const r = await listen(dst, 'log|audit');
  for (const e of ['log', 'logs', 'audit', 'xlog', 'log.x']) src.emit(e, e);
  src.emit('audit', 'end');
  await r.wait(3);
  await src.flush();
  await dst.flush();
  assert.deepEqual(
    r.msgs.map((m) => m.data),
    ['log', 'audit', 'end'],
  );
});

test('order per sender, and once/off', async (t) => {
  const srv = await startServer(t, { channels: { A: {} } });
  const src = await connect(t, srv, 'A');
  const dst = await connect(t, srv, 'A');
  const all = await listen(dst, 'n');
  const onceGot = [];
  const offGot = [];
  const keep = [];
  const offCb = (m) => offGot.push(m.data);
  dst.once('n', (m) => onceGot.push(m.data));
  dst.on('n', offCb);
  dst.on('n', offCb); // twice: off removes exactly one
  dst.on('n', (m) => keep.push(m.data));
  await dst.flush();
  src.emit('n', 0);
  await all.wait(1);
  dst.off('n', offCb);
  for (let i = 1; i < 1000; i++) src.emit('n', i);
  await all.wait(1000);
  assert.deepEqual(
    all.msgs.map((m) => m.data),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(onceGot, [0]);
  assert.equal(offGot.filter((v) => v === 0).length, 2);
  assert.equal(offGot.length, 1 + 999 + 1, 'off removed exactly one of the two');
  assert.equal(keep.length, 1000);
  // The last listener on a pattern gone: the server stops sending it.
  dst.off('n', offCb);
  dst.removeListener('n', all.handle);
  const before = keep.length;
  const last = keep.at(-1);
  src.emit('n', 'after');
  await until(() => keep.length > before, 'the remaining listener');
  assert.equal(keep.at(-1), 'after');
  assert.ok(last === 999);
  assert.equal(offGot.length, 1001);
});

test('own messages: in memory, once, never back over the socket', async (t) => {
  const srv = await startServer(t, { channels: { A: {} } });
  const a = await connect(t, srv, 'A');
  const got = [];
  a.on('self', (m) => got.push(m));
  await a.flush();
  a.emit('self', { x: 1 });
  assert.equal(got.length, 1, 'delivered before emit returns');
  assert.deepEqual(got[0], { event: 'self', data: { x: 1 }, channel: 'A', agent: a.id, node: '', local: true });
  await a.flush();
  assert.equal(got.length, 1);
});

test('a 32 MiB message and a 10,000-message burst arrive intact and in order', async (t) => {
  const srv = await startServer(t, { maxframe: 64 << 20, channels: { A: {} } });
  const src = await connect(t, srv, 'A');
  const dst = await connect(t, srv, 'A');
  const r = await listen(dst, '.*');
  const big = crypto.randomBytes(32 << 20);
  src.emit('big', big);
  const n = 10000;
  for (let i = 0; i < n; i++) src.emit('small', i);
  await r.wait(n + 1, 60000);
  assert.equal(r.msgs[0].event, 'big');
  assert.ok(Buffer.isBuffer(r.msgs[0].data));
  assert.ok(r.msgs[0].data.equals(big), 'the 32 MiB message is intact');
  for (let i = 0; i < n; i++) assert.equal(r.msgs[i + 1].data, i);
});

test('JSON values and raw bytes', async (t) => {
  const srv = await startServer(t, { channels: { A: {} } });
  const src = await connect(t, srv, 'A');
  const dst = await connect(t, srv, 'A');
  const r = await listen(dst, 'v');
  const values = [null, 0, 'héllo', [1, 'two'], { nested: { a: [true, false] } }];
  for (const v of values) src.emit('v', v);
  src.emit('v'); // undefined is sent as null
  src.emit('v', Buffer.from([0, 0xff, 0x10]));
  src.emit('v', new Uint8Array([1, 2]));
  await r.wait(values.length + 3);
  assert.deepEqual(
    r.msgs.slice(0, values.length + 1).map((m) => m.data),
    [...values, null],
  );
  assert.deepEqual([...r.msgs[values.length + 1].data], [0, 0xff, 0x10]);
  assert.deepEqual([...r.msgs[values.length + 2].data], [1, 2]);
});
