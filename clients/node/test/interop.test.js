'use strict';
// Interoperation both ways with Go agents (ncclient, built from this
// repository, is one) and with legacy JSON agents of netcluster 1.x.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile, spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { startServer, connect, listen, bin, until } = require('./helpers');

function ncclient(srv, ...args) {
  return new Promise((resolve, reject) => {
    execFile(bin('ncclient'), ['-socketdir', srv.dir, ...args], { timeout: 20000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`ncclient ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

const config = { channels: { A: { propagatetochannels: '.*' }, B: {}, L: { propagatetochannels: '.*' } } };

test('a Go agent emits, a Node agent receives (through propagation)', async (t) => {
  const srv = await startServer(t, config);
  const node = await connect(t, srv, 'B');
  const r = await listen(node, 'log');
  await ncclient(srv, 'emit', 'A', 'log', '{"x":[1,"two"]}');
  const [m] = await r.wait(1);
  assert.equal(m.event, 'log');
  assert.equal(m.channel, 'A');
  assert.deepEqual(m.data, { x: [1, 'two'] });
  assert.equal(m.local, false);
  assert.match(m.agent, /^ncclient-/);
});

test('a Node agent emits, a Go agent receives', async (t) => {
  const srv = await startServer(t, config);
  const node = await connect(t, srv, 'A');
  const go = spawn(bin('ncclient'), ['-socketdir', srv.dir, 'listen', 'A', 'log|bytes', '-n', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => go.kill('SIGKILL'));
  let out = '';
  go.stdout.on('data', (b) => (out += b));
  let errOut = '';
  go.stderr.on('data', (b) => (errOut += b));
  const exited = new Promise((resolve) => go.once('exit', resolve));
  // The Go listener is ready once it shows up in showchannel with its pattern.
  for (let i = 0; ; i++) {
    const s = await ncclient(srv, '-json', 'showchannel', 'A');
    if (s.includes('log|bytes')) break;
    if (i > 200) throw new Error('ncclient listen never registered: ' + s + errOut);
    await new Promise((r) => setTimeout(r, 20));
  }
  node.emit('log', { from: 'node' });
  node.emit('bytes', Buffer.from('raw text'));
  node.emit('log', 'last');
  assert.equal(await exited, 0, errOut);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.event, l.channel, l.agent, l.data]),
    [
      ['log', 'A', node.id, { from: 'node' }],
      ['bytes', 'A', node.id, 'raw text'],
      ['log', 'A', node.id, 'last'],
    ],
  );
  assert.equal(lines[1].raw, true);
});

// A legacy agent: NUL-terminated JSON envelopes on the same socket.
function legacy(srv, channel) {
  const sock = net.connect(path.join(srv.dir, 'netcluster-' + channel));
  const got = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (s) => {
    buf += s;
    let i;
    while ((i = buf.indexOf('\0')) >= 0) {
      got.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const ready = new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, got, ready, send: (env) => sock.write(JSON.stringify(env) + '\0') };
}

test('legacy JSON agents and Node agents, both ways', async (t) => {
  const srv = await startServer(t, config);
  const old = legacy(srv, 'L');
  t.after(() => old.sock.destroy());
  await old.ready;
  const node = await connect(t, srv, 'A');
  const r = await listen(node, 'legacy.*');
  // Legacy → Node, propagated from L to A: the vectors' "original" case.
  old.send({ channel: 'L', broadcast: false, event: 'legacy.log', data: { x: 1 } });
  old.send({ event: 'legacy.nodata' });
  const got = await r.wait(2);
  assert.deepEqual(
    got.map((m) => [m.event, m.channel, m.data]),
    [
      ['legacy.log', 'L', { x: 1 }],
      ['legacy.nodata', 'L', null],
    ],
  );
  assert.match(got[0].agent, /^legacy-/);
  // Node → legacy, on A (which propagates to L): JSON as JSON, bytes as a
  // string. The legacy peer's first send made it a legacy connection.
  node.emit('toLegacy', { y: [2] });
  node.emit('toLegacy', Buffer.from('héllo'));
  await until(() => old.got.length >= 2, 'the legacy agent to receive two messages');
  assert.deepEqual(old.got, [
    { channel: 'A', broadcast: false, event: 'toLegacy', data: { y: [2] } },
    { channel: 'A', broadcast: false, event: 'toLegacy', data: 'héllo' },
  ]);
});
