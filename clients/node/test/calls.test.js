'use strict';
// Request/reply and queue groups (protocol version 2) against a real
// ncserver: the cases of the Go library's request_test.go and
// onqueue_test.go that apply.
const test = require('node:test');
const assert = require('node:assert/strict');
const { NoRespondersError, TimeoutError, NetclusterError } = require('..');
const { spawn, execFile } = require('node:child_process');
const readline = require('node:readline');
const { startServer, connect, until, bin } = require('./helpers');

const config = { channels: { A: { propagatetochannels: 'B' }, B: {} } };

test('request and reply: the answer reaches the requester only', async (t) => {
  const srv = await startServer(t, config);
  const worker = await connect(t, srv, 'A');
  worker.on('price', (m) => {
    assert.equal(m.request, true);
    m.reply({ sku: m.data.sku, price: m.data.sku * 2, from: m.agent });
  });
  await worker.flush();
  const r1 = await connect(t, srv, 'A');
  const r2 = await connect(t, srv, 'A');
  const bystander = await connect(t, srv, 'A');
  const seen = [];
  bystander.on('.*', (m) => seen.push(m));
  await bystander.flush();
  // Concurrent requesters each get their own answer.
  const [a1, a2] = await Promise.all([r1.request('price', { sku: 7 }), r2.request('price', { sku: 8 })]);
  assert.deepEqual(a1.data, { sku: 7, price: 14, from: r1.id });
  assert.deepEqual(a2.data, { sku: 8, price: 16, from: r2.id });
  assert.equal(a1.agent, worker.id);
  assert.equal(a1.channel, 'A');
  assert.equal(a1.event, 'price');
  // The bystander listens to everything: it sees the requests, as events
  // it may answer, but never the answers.
  await r1.flush();
  await worker.flush();
  await bystander.flush();
  assert.deepEqual(seen.map((m) => [m.event, m.request]).sort(), [
    ['price', true],
    ['price', true],
  ]);
});

test('no responders is reported at once, a silent listener times out', async (t) => {
  const srv = await startServer(t, config);
  const r = await connect(t, srv, 'A');
  const start = Date.now();
  await assert.rejects(r.request('nobody', 1, { timeout: 10000 }), (e) => e instanceof NoRespondersError && e.code === 'NC_NO_RESPONDERS' && /"nobody"/.test(e.message));
  assert.ok(Date.now() - start < 5000, 'NoResponders, not the timeout');
  const silent = await connect(t, srv, 'A');
  silent.on('mute', () => {});
  await silent.flush();
  await assert.rejects(r.request('mute', 1, { timeout: 200 }), (e) => e instanceof TimeoutError && /within 200 ms/.test(e.message));
});

test('requests cross a propagation rule, and the answer comes back', async (t) => {
  const srv = await startServer(t, config);
  const b = await connect(t, srv, 'B');
  b.on('upper', (m) => m.reply(m.data.toUpperCase()));
  await b.flush();
  const a = await connect(t, srv, 'A');
  const ans = await a.request('upper', 'abc');
  assert.equal(ans.data, 'ABC');
  assert.equal(ans.channel, 'B');
  // Raw bytes both ways.
  b.on('raw', (m) => m.reply(Buffer.concat([m.data, Buffer.from([0xff])])));
  await b.flush();
  const raw = await a.request('raw', Buffer.from([1, 2]));
  assert.deepEqual([...raw.data], [1, 2, 0xff]);
});

test("the agent's own listener answers in memory", async (t) => {
  const srv = await startServer(t, config);
  const a = await connect(t, srv, 'A');
  a.on('self', (m) => {
    assert.equal(m.local, true);
    m.reply(m.data + 1);
  });
  await a.flush();
  const ans = await a.request('self', 41);
  assert.equal(ans.data, 42);
  assert.equal(ans.local, true);
});

test('queue groups: each message to exactly one member of each group', async (t) => {
  const srv = await startServer(t, config);
  const src = await connect(t, srv, 'A');
  const w1 = await connect(t, srv, 'A');
  const w2 = await connect(t, srv, 'A');
  const counts = { g1a: [], g1b: [], g1c: [], g2: [], plain: [] };
  w1.onQueue('job', 'g1', (m) => counts.g1a.push(m.data));
  w1.onQueue('job', 'g1', (m) => counts.g1b.push(m.data)); // two memberships of one agent: two members
  w2.onQueue('job', 'g1', (m) => counts.g1c.push(m.data));
  w2.onQueue('job', 'g2', (m) => counts.g2.push(m.data));
  w2.on('job', (m) => counts.plain.push(m.data));
  await w1.flush();
  await w2.flush();
  const n = 3000;
  for (let i = 0; i < n; i++) src.emit('job', i);
  await until(() => counts.g1a.length + counts.g1b.length + counts.g1c.length === n && counts.g2.length === n && counts.plain.length === n, 'every message', 30000);
  const g1 = [...counts.g1a, ...counts.g1b, ...counts.g1c].sort((x, y) => x - y);
  assert.deepEqual(g1, Array.from({ length: n }, (_, i) => i), 'group g1: each message once, none twice');
  for (const k of ['g1a', 'g1b', 'g1c']) assert.ok(Math.abs(counts[k].length - n / 3) <= n / 30, `${k} got ${counts[k].length} of ${n}: round-robin within 10%`);
  assert.equal(counts.g2.length, n, 'another group gets all');
  assert.equal(counts.plain.length, n, 'plain listeners get all');
});

test('a member that leaves gets no more; a request to a group goes to one member', async (t) => {
  const srv = await startServer(t, config);
  const src = await connect(t, srv, 'A');
  const w1 = await connect(t, srv, 'A');
  const w2 = await connect(t, srv, 'A');
  const got1 = [];
  const got2 = [];
  const m1 = w1.onQueue('work', 'pool', (m) => {
    got1.push(m.data);
    m.reply?.('w1');
  });
  w2.onQueue('work', 'pool', (m) => {
    got2.push(m.data);
    m.reply?.('w2');
  });
  await w1.flush();
  await w2.flush();
  const answers = [];
  for (let i = 0; i < 20; i++) answers.push((await src.request('work', i)).data);
  assert.equal(got1.length + got2.length, 20);
  assert.deepEqual([...new Set(answers)].sort(), ['w1', 'w2']);
  m1.off();
  await w1.flush();
  const before = got1.length;
  for (let i = 0; i < 20; i++) assert.equal((await src.request('work', i)).data, 'w2');
  assert.equal(got1.length, before);
});

test('queue memberships are restored after a server restart', async (t) => {
  const srv = await startServer(t, config);
  const w = await connect(t, srv, 'A');
  const got = [];
  w.onQueue('job', 'g', (m) => got.push(m.data));
  await w.flush();
  await srv.stop('SIGKILL');
  await until(() => w.state === 'reconnecting', 'the disconnect');
  await srv.start();
  await w.flush();
  const src = await connect(t, srv, 'A');
  src.emit('job', 'after');
  await until(() => got.length === 1, 'the message after the restart');
  assert.deepEqual(got, ['after']);
});

test('bad queue groups and requests are refused', async (t) => {
  const srv = await startServer(t, config);
  const a = await connect(t, srv, 'A');
  assert.throws(() => a.onQueue('x', 'bad group', () => {}), (e) => e instanceof NetclusterError && e.code === 'NC_BAD_GROUP');
  assert.throws(() => a.onQueue('(?=x)', 'g', () => {}), /lookaround/);
  await assert.rejects(a.request('', 1), /event name ""/);
  await assert.rejects(a.request('x', 1, { timeout: 0 }), /timeout 0/);
  const silent = await connect(t, srv, 'A');
  silent.on('never', () => {});
  await silent.flush();
  const p = a.request('never', 1, { timeout: 60000 });
  await a.flush();
  await a.close();
  await assert.rejects(p, (e) => e.code === 'NC_CLOSED');
});

test('request/reply and queue groups with Go agents, both ways', async (t) => {
  const srv = await startServer(t, config);
  // A Go worker in a queue group answers a Node request.
  const go = spawn(bin('ncgoagent'), [srv.dir, 'serve', 'A', 'resize', 'pool'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => go.kill('SIGKILL'));
  const goId = await new Promise((resolve, reject) => {
    readline.createInterface({ input: go.stdout }).on('line', (l) => l.startsWith('READY ') && resolve(l.slice(6)));
    go.once('exit', (c) => reject(new Error('goagent exited ' + c)));
  });
  const node = await connect(t, srv, 'A');
  const ans = await node.request('resize', { w: 200 });
  assert.deepEqual(ans.data, { go: { w: 200 } });
  assert.equal(ans.agent, goId);
  // A Node worker in a queue group answers a Go request.
  const worker = await connect(t, srv, 'B');
  worker.onQueue('upper', 'pool', (m) => m.reply(m.data.toUpperCase()));
  await worker.flush();
  const out = await new Promise((resolve, reject) =>
    execFile(bin('ncgoagent'), [srv.dir, 'request', 'A', 'upper', '"abc"'], { timeout: 20000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
  assert.equal(out.trim(), '"ABC"');
});
