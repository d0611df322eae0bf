'use strict';
// The codec against the repository's wire vectors
// (internal/wire/testdata/vectors.json), so Go and Node cannot drift.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const wire = require('../dist/wire.js');
const { REPO } = require('./helpers');

// u64 values are read as text: JSON numbers lose precision past 2^53.
const text = fs.readFileSync(path.join(REPO, 'internal/wire/testdata/vectors.json'), 'utf8');
const vectors = JSON.parse(text.replace(/"(value|ID)": (\d+)/g, '"$1": "$2"'));

const types = {
  hello: wire.T.Hello,
  welcome: wire.T.Welcome,
  listen: wire.T.Listen,
  unlisten: wire.T.Unlisten,
  msg: wire.T.Msg,
  error: wire.T.Error,
  ping: wire.T.Ping,
  pong: wire.T.Pong,
  dropped: wire.T.Dropped,
  request: wire.T.Request,
  reply: wire.T.Reply,
};

function data(m) {
  return m.DataHex !== undefined ? Buffer.from(m.DataHex, 'hex') : Buffer.from(m.Data ?? m.Body ?? '', 'utf8');
}

// Decodes one frame with the stream reader and returns [type, payload].
function readOne(bytes) {
  const frames = [];
  new wire.FrameReader(wire.DEFAULT_MAX_FRAME, (t, b, s, e) => frames.push([t, Buffer.from(b.subarray(s, e))])).push(bytes);
  assert.equal(frames.length, 1);
  return frames[0];
}

test('every frame type of the vectors is known', () => {
  assert.ok(vectors.frames.length >= 20);
  for (const v of vectors.frames) assert.ok(v.type in types, v.type);
});

for (const v of vectors.frames) {
  test(`vector ${v.name}`, () => {
    const bytes = Buffer.from(v.hex.replace(/\s+/g, ''), 'hex');
    const [type, p] = readOne(bytes);
    assert.equal(type, types[v.type]);
    let encoded;
    switch (v.type) {
      case 'hello': {
        const h = wire.parseHello(p);
        assert.deepEqual(h, { version: v.hello.Version, pid: v.hello.PID, agentId: v.hello.AgentID, channel: v.hello.Channel });
        encoded = wire.encodeHello(h);
        break;
      }
      case 'welcome': {
        const w = wire.parseWelcome(p);
        assert.deepEqual(w, { version: v.welcome.Version, maxFrame: v.welcome.MaxFrame, serverId: v.welcome.ServerID });
        encoded = wire.encodeWelcome(w);
        break;
      }
      case 'listen':
      case 'unlisten':
        assert.equal(wire.parseListen(p), v.pattern);
        encoded = wire.encodeListen(type, v.pattern);
        break;
      case 'msg': {
        const m = wire.parseMsg(p);
        const want = { flags: v.msg.Flags, channel: v.msg.Channel, agent: v.msg.Agent, node: v.msg.Node, event: v.msg.Event, data: data(v.msg) };
        assert.deepEqual({ ...m, data: Buffer.from(m.data) }, want);
        // The agent's decoder, with its string caches, agrees.
        const dec = new wire.MsgDecoder();
        for (let i = 0; i < 2; i++) {
          const d = dec.decode(p, 0, p.length);
          assert.deepEqual({ ...d, data: Buffer.from(d.data) }, want);
        }
        for (let cut = 0; cut < p.length - want.data.length; cut++) {
          assert.throws(() => new wire.MsgDecoder().decode(p, 0, cut), /truncated frame/, `cut at ${cut}`);
        }
        encoded = wire.encodeMsg(want);
        // The agent's own fast path writes the same bytes.
        if (want.node === '') {
          const origin = wire.msgOrigin(want.channel, want.agent);
          const el = Buffer.byteLength(want.event);
          const buf = Buffer.alloc(wire.msgFrameLen(origin, el, want.data.length));
          wire.putMsg(buf, 0, want.flags, origin, want.event, el, want.data, want.data.length);
          assert.deepEqual(buf, bytes, 'putMsg with bytes');
          const s = want.data.toString('utf8');
          if (Buffer.from(s).equals(want.data)) {
            buf.fill(0);
            wire.putMsg(buf, 0, want.flags, origin, want.event, el, s, want.data.length);
            assert.deepEqual(buf, bytes, 'putMsg with a string');
          }
        }
        break;
      }
      case 'error': {
        const e = wire.parseError(p);
        assert.deepEqual(e, { code: v.error.Code, text: v.error.Text });
        encoded = wire.encodeError(e);
        break;
      }
      case 'ping':
      case 'pong':
      case 'dropped': {
        const n = wire.parseU64(p, 'value');
        assert.equal(n, BigInt(v.value));
        encoded = wire.encodeU64(type, n);
        break;
      }
      case 'request':
      case 'reply': {
        const r = wire.parseRequest(p);
        assert.equal(r.id, BigInt(v.request.ID));
        assert.deepEqual(Buffer.from(r.body), data(v.request));
        encoded = wire.encodeRequest(type, r.id, r.body);
        break;
      }
    }
    assert.equal(encoded.toString('hex'), bytes.toString('hex'), 'encoding gives the vector bytes');
  });
}

test('the preamble and numbers match docs/PROTOCOL.md', () => {
  assert.equal(wire.PREAMBLE.toString('latin1'), 'NCW\x01');
  assert.equal(wire.DEFAULT_MAX_FRAME, 16777216);
  assert.deepEqual(Object.values(wire.T), Array.from({ length: 17 }, (_, i) => i + 1));
  const doc = fs.readFileSync(path.join(REPO, 'docs/PROTOCOL.md'), 'utf8');
  for (const [name, n] of Object.entries(wire.T)) {
    assert.match(doc, new RegExp(`\\| ${n} \\(0x${n.toString(16).padStart(2, '0')}\\) \\| ${name} \\|`), `frame type ${name} = ${n}`);
  }
});

// Version 2 frames (request/reply, queue groups): internal/wire/testdata/calls.json.
const calls = JSON.parse(fs.readFileSync(path.join(REPO, 'internal/wire/testdata/calls.json'), 'utf8').replace(/"(value|ID)": (\d+)/g, '"$1": "$2"'));
const msgOf = (m) => ({ flags: m.Flags, channel: m.Channel, agent: m.Agent, node: m.Node, event: m.Event, data: data(m) });
const plain = (m) => ({ ...m, data: Buffer.from(m.data) });

for (const v of calls.frames) {
  test(`version 2 vector ${v.name}`, () => {
    const bytes = Buffer.from(v.hex.replace(/\s+/g, ''), 'hex');
    const [type, p] = readOne(bytes);
    let encoded;
    switch (v.type) {
      case 'call': {
        assert.equal(type, wire.T.Call);
        const c = wire.parseCall(p);
        const want = { id: BigInt(v.call.ID), msg: msgOf(v.call.Msg) };
        assert.deepEqual({ ...c, msg: plain(c.msg) }, want);
        encoded = wire.encodeCall(want);
        break;
      }
      case 'answer': {
        assert.equal(type, wire.T.Answer);
        const a = wire.parseAnswer(p);
        const want = { id: BigInt(v.answer.ID), to: { channel: v.answer.To.Channel, agent: v.answer.To.Agent, node: v.answer.To.Node }, msg: msgOf(v.answer.Msg) };
        assert.deepEqual({ ...a, msg: plain(a.msg) }, want);
        encoded = wire.encodeAnswer(want);
        break;
      }
      case 'noresponders':
        assert.equal(type, wire.T.NoResponders);
        assert.equal(wire.parseU64(p, 'id'), BigInt(v.value));
        encoded = wire.encodeU64(type, BigInt(v.value));
        break;
      case 'queuelisten': {
        assert.equal(type, wire.T.QueueListen);
        const q = wire.parseQueueListen(p);
        assert.deepEqual(q, { sid: v.queuelisten.SID, group: v.queuelisten.Group, pattern: v.queuelisten.Pattern });
        encoded = wire.encodeQueueListen(q.sid, q.group, q.pattern);
        break;
      }
      case 'queueunlisten':
        assert.equal(type, wire.T.QueueUnlisten);
        assert.equal(wire.parseQueueUnlisten(p), v.sid);
        encoded = wire.encodeQueueUnlisten(v.sid);
        break;
      case 'queuemsg': {
        assert.equal(type, wire.T.QueueMsg);
        const q = wire.parseQueueMsg(p);
        assert.equal(q.sid, v.queuemsg.SID);
        if (v.queuemsg.Msg) {
          assert.equal(q.type, wire.T.Msg);
          assert.deepEqual(plain(wire.parseMsg(q.payload)), msgOf(v.queuemsg.Msg));
        } else {
          assert.equal(q.type, wire.T.Call);
          const c = wire.parseCall(q.payload);
          assert.equal(c.id, BigInt(v.queuemsg.Call.ID));
          assert.deepEqual(plain(c.msg), msgOf(v.queuemsg.Call.Msg));
        }
        encoded = wire.encodeQueueMsg(q.sid, q.type, q.payload);
        break;
      }
      default:
        assert.fail('unknown vector type ' + v.type);
    }
    assert.equal(encoded.toString('hex'), bytes.toString('hex'), 'encoding gives the vector bytes');
  });
}

for (const v of calls.malformed) {
  test(`version 2 malformed ${v.name}`, () => {
    const [type, p] = readOne(Buffer.from(v.hex.replace(/\s+/g, ''), 'hex'));
    const parse = {
      [wire.T.Call]: wire.parseCall,
      [wire.T.Answer]: wire.parseAnswer,
      [wire.T.QueueListen]: wire.parseQueueListen,
      [wire.T.QueueUnlisten]: wire.parseQueueUnlisten,
      [wire.T.QueueMsg]: (b) => {
        const q = wire.parseQueueMsg(b);
        return q.type === wire.T.Msg ? wire.parseMsg(q.payload) : wire.parseCall(q.payload);
      },
    }[type];
    // The Go error's reason, after its "wire: " prefix, is the client's too.
    const reason = v.error.slice(v.error.indexOf('wire: ') + 6);
    assert.throws(() => parse(p), (e) => e instanceof wire.WireError && e.message.endsWith(reason), `want ${reason}`);
  });
}

test('the reader: any split of a stream gives the same frames', () => {
  const all = Buffer.concat(vectors.frames.map((v) => Buffer.from(v.hex.replace(/\s+/g, ''), 'hex')));
  const want = [];
  new wire.FrameReader(wire.DEFAULT_MAX_FRAME, (t, b, s, e) => want.push([t, b.toString('hex', s, e)])).push(all);
  assert.equal(want.length, vectors.frames.length);
  for (let size = 1; size <= 37; size++) {
    const got = [];
    const r = new wire.FrameReader(wire.DEFAULT_MAX_FRAME, (t, b, s, e) => got.push([t, b.toString('hex', s, e)]));
    for (let i = 0; i < all.length; i += size) r.push(all.subarray(i, i + size));
    assert.deepEqual(got, want, `chunks of ${size}`);
  }
});

test('the decoder never serves a cached string for other bytes', () => {
  const dec = new wire.MsgDecoder();
  const names = ['agent-1', 'agent-2', 'bgent-1', 'agent-1', 'é', 'e\u0301'.normalize('NFD').slice(0, 1) + 'x'];
  for (const [i, agent] of names.entries()) {
    const f = wire.encodeMsg({ flags: 1, channel: 'A' + (i % 2), agent, node: i % 3 ? 'n' + i : '', event: 'ev' + (i % 2), data: Buffer.from('1') });
    const m = dec.decode(f, 5, f.length);
    assert.equal(m.agent, agent);
    assert.equal(m.channel, 'A' + (i % 2));
    assert.equal(m.node, i % 3 ? 'n' + i : '');
    assert.equal(m.event, 'ev' + (i % 2));
  }
});

test('the reader refuses zero and oversized lengths', () => {
  const r = new wire.FrameReader(1024, () => {});
  assert.throws(() => r.push(Buffer.from('0000000005', 'hex')), /zero frame length/);
  const r2 = new wire.FrameReader(1024, () => {});
  assert.throws(() => r2.push(Buffer.from('0000040105', 'hex')), /frame too large: 1025 bytes, the limit is 1024/);
  assert.throws(() => wire.parseWelcome(Buffer.from('0100', 'hex')), /truncated frame: max frame/);
  assert.throws(() => wire.parseU64(Buffer.alloc(9), 'token'), /trailing bytes/);
});
