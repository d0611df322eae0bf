// The native wire (docs/PROTOCOL.md of the netcluster repository): a 4-byte
// preamble, then frames of a u32 length (type byte included), a type byte and
// a payload. Integers are big-endian. Type numbers and error codes are only
// ever appended to; test/wire.test.js checks every vector of
// internal/wire/testdata/vectors.json against this file.

/** The bytes a native agent sends first: "NCW" and framing generation 1. */
export const PREAMBLE = Buffer.from([0x4e, 0x43, 0x57, 0x01]);
/** The protocol version of the frames 1–11. */
export const VERSION = 1;
/** The protocol version that adds request/reply and queue groups (frames 12–17); the client offers it in Hello. */
export const VERSION_CALLS = 2;
/** Bytes before a frame's payload: the u32 length and the type byte. */
export const HEADER_LEN = 5;
/** The default bound on a frame's length field (16 MiB). */
export const DEFAULT_MAX_FRAME = 16 << 20;
/** The longest event name or listener pattern, in bytes (str16). */
export const MAX_STR16 = 0xffff;
/** The longest channel name or agent id, in bytes (str8). */
export const MAX_STR8 = 0xff;

/** Frame types. ONLY APPEND. */
export const T = {
  Hello: 1,
  Welcome: 2,
  Listen: 3,
  Unlisten: 4,
  Msg: 5,
  Error: 6,
  Ping: 7,
  Pong: 8,
  Dropped: 9,
  Request: 10,
  Reply: 11,
  // Version 2: request/reply and queue groups (docs/PROTOCOL.md, section 11).
  Call: 12,
  Answer: 13,
  NoResponders: 14,
  QueueListen: 15,
  QueueUnlisten: 16,
  QueueMsg: 17,
} as const;

/** Msg flag bit 0: the data is one JSON document. */
export const FLAG_JSON = 0x01;

/** Error codes carried by Error frames. ONLY APPEND. */
export const ErrorCode = {
  Malformed: 1,
  TooLarge: 2,
  Protocol: 3,
  Version: 4,
  BadHello: 5,
  BadPattern: 6,
  Origin: 7,
  SlowConsumer: 8,
  Shutdown: 9,
  ChannelGone: 10,
  Forbidden: 11,
  BadRequest: 12,
} as const;

export interface Hello {
  version: number;
  pid: number;
  agentId: string;
  channel: string;
}

export interface Welcome {
  version: number;
  maxFrame: number;
  serverId: string;
}

export interface Msg {
  flags: number;
  channel: string;
  agent: string;
  node: string;
  event: string;
  data: Buffer;
}

export interface ErrorFrame {
  code: number;
  text: string;
}

/** A malformed frame: what was wrong, in the words of the Go codec. */
export class WireError extends Error {
  constructor(message: string) {
    super('netcluster: wire: ' + message);
    this.name = 'WireError';
  }
}

function header(buf: Buffer, type: number, payloadLen: number): number {
  buf.writeUInt32BE(payloadLen + 1, 0);
  buf[4] = type;
  return HEADER_LEN;
}

function putStr8(buf: Buffer, off: number, s: string, what: string): number {
  const n = buf.write(s, off + 1, 'utf8');
  if (n > MAX_STR8) throw new WireError(`${what} longer than ${MAX_STR8} bytes`);
  buf[off] = n;
  return off + 1 + n;
}

function putStr16(buf: Buffer, off: number, s: string): number {
  const n = buf.write(s, off + 2, 'utf8');
  buf.writeUInt16BE(n, off);
  return off + 2 + n;
}

function str8Len(s: string, what: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_STR8) throw new WireError(`${what} of ${n} bytes; the limit is ${MAX_STR8}`);
  return n;
}

function str16Len(s: string, what: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_STR16) throw new WireError(`${what} of ${n} bytes; the limit is ${MAX_STR16}`);
  return n;
}

/** Encodes a Hello frame (without the preamble). */
export function encodeHello(h: Hello): Buffer {
  const a = str8Len(h.agentId, 'agent id');
  const c = str8Len(h.channel, 'channel');
  const p = 1 + 4 + 1 + a + 1 + c;
  const buf = Buffer.allocUnsafe(HEADER_LEN + p);
  let off = header(buf, T.Hello, p);
  buf[off++] = h.version;
  buf.writeUInt32BE(h.pid >>> 0, off);
  off = putStr8(buf, off + 4, h.agentId, 'agent id');
  putStr8(buf, off, h.channel, 'channel');
  return buf;
}

/** Encodes a Welcome frame (the server's; for tests). */
export function encodeWelcome(w: Welcome): Buffer {
  const s = str8Len(w.serverId, 'server id');
  const p = 1 + 4 + 1 + s;
  const buf = Buffer.allocUnsafe(HEADER_LEN + p);
  let off = header(buf, T.Welcome, p);
  buf[off++] = w.version;
  buf.writeUInt32BE(w.maxFrame >>> 0, off);
  putStr8(buf, off + 4, w.serverId, 'server id');
  return buf;
}

/** Encodes a Listen or Unlisten frame. */
export function encodeListen(type: number, pattern: string): Buffer {
  const n = str16Len(pattern, 'listener pattern');
  const buf = Buffer.allocUnsafe(HEADER_LEN + 2 + n);
  putStr16(buf, header(buf, type, 2 + n), pattern);
  return buf;
}

/** Encodes an Error frame; a text over 65,535 bytes is cut. */
export function encodeError(e: ErrorFrame): Buffer {
  let text = Buffer.from(e.text, 'utf8');
  if (text.length > MAX_STR16) text = text.subarray(0, MAX_STR16);
  const buf = Buffer.allocUnsafe(HEADER_LEN + 4 + text.length);
  let off = header(buf, T.Error, 4 + text.length);
  buf.writeUInt16BE(e.code, off);
  buf.writeUInt16BE(text.length, off + 2);
  text.copy(buf, off + 4);
  return buf;
}

/** Encodes a frame whose payload is one u64: Ping, Pong, Dropped. */
export function encodeU64(type: number, value: bigint): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + 8);
  buf.writeBigUInt64BE(value, header(buf, type, 8));
  return buf;
}

/** Encodes a Request or Reply frame: a u64 id, then the body. */
export function encodeRequest(type: number, id: bigint, body: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + 8 + body.length);
  const off = header(buf, type, 8 + body.length);
  buf.writeBigUInt64BE(id, off);
  body.copy(buf, off + 8);
  return buf;
}

/**
 * The fixed part of the Msg frames one agent sends: channel, agent and an
 * empty node, encoded once per connection.
 */
export function msgOrigin(channel: string, agent: string): Buffer {
  const c = str8Len(channel, 'channel');
  const a = str8Len(agent, 'agent id');
  const buf = Buffer.allocUnsafe(1 + c + 1 + a + 1);
  const off = putStr8(buf, putStr8(buf, 0, channel, 'channel'), agent, 'agent id');
  buf[off] = 0;
  return buf;
}

/** The length of a Msg frame for the given parts, header included. */
export function msgFrameLen(origin: Buffer, eventLen: number, dataLen: number): number {
  return HEADER_LEN + 1 + origin.length + 2 + eventLen + dataLen;
}

/**
 * Writes a Msg frame into buf at off; data is either a string (written as
 * UTF-8, dataLen its byte length) or bytes. Returns the offset after it.
 */
export function putMsg(
  buf: Buffer,
  off: number,
  flags: number,
  origin: Buffer,
  event: string,
  eventLen: number,
  data: string | Uint8Array,
  dataLen: number,
): number {
  const payload = 1 + origin.length + 2 + eventLen + dataLen;
  buf.writeUInt32BE(payload + 1, off);
  buf[off + 4] = T.Msg;
  buf[off + 5] = flags;
  off += 6;
  buf.set(origin, off);
  off += origin.length;
  buf[off] = eventLen >>> 8;
  buf[off + 1] = eventLen & 0xff;
  off += 2;
  off += eventLen === event.length && eventLen < 48 ? asciiWrite(buf, off, event) : buf.write(event, off, eventLen, 'utf8');
  if (typeof data === 'string') {
    off += buf.write(data, off, dataLen, 'utf8');
  } else {
    buf.set(data, off);
    off += dataLen;
  }
  return off;
}

// Short ASCII names are copied by hand: cheaper than the UTF-8 encoder's call.
function asciiWrite(buf: Buffer, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off + i] = s.charCodeAt(i);
  return s.length;
}

/** Encodes the payload of a Msg (also the tail of Call, Answer, QueueMsg). */
export function encodeMsgPayload(m: Msg): Buffer {
  const c = str8Len(m.channel, 'channel');
  const a = str8Len(m.agent, 'agent id');
  const n = str8Len(m.node, 'node');
  const e = str16Len(m.event, 'event name');
  const buf = Buffer.allocUnsafe(1 + 1 + c + 1 + a + 1 + n + 2 + e + m.data.length);
  buf[0] = m.flags;
  let off = putStr8(buf, 1, m.channel, 'channel');
  off = putStr8(buf, off, m.agent, 'agent id');
  off = putStr8(buf, off, m.node, 'node');
  off = putStr16(buf, off, m.event);
  m.data.copy(buf, off);
  return buf;
}

function frame(type: number, ...parts: Buffer[]): Buffer {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const head = Buffer.allocUnsafe(HEADER_LEN);
  header(head, type, len);
  return Buffer.concat([head, ...parts], HEADER_LEN + len);
}

function u64(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v);
  return b;
}

/** Encodes one whole Msg frame. */
export function encodeMsg(m: Msg): Buffer {
  return frame(T.Msg, encodeMsgPayload(m));
}

/** A Call: a request id, then a Msg payload. */
export interface Call {
  id: bigint;
  msg: Msg;
}

/** An Answer: the Call's id and origin (its requester), then the answer's Msg payload. */
export interface Answer {
  id: bigint;
  to: { channel: string; agent: string; node: string };
  msg: Msg;
}

export function encodeCall(c: Call): Buffer {
  return frame(T.Call, u64(c.id), encodeMsgPayload(c.msg));
}

export function encodeAnswer(a: Answer): Buffer {
  const to = Buffer.allocUnsafe(3 + 3 * 255);
  let o = putStr8(to, 0, a.to.channel, 'to channel');
  o = putStr8(to, o, a.to.agent, 'to agent');
  o = putStr8(to, o, a.to.node, 'to node');
  return frame(T.Answer, u64(a.id), to.subarray(0, o), encodeMsgPayload(a.msg));
}

export function encodeQueueListen(sid: number, group: string, pattern: string): Buffer {
  const g = str8Len(group, 'queue group');
  const p = str16Len(pattern, 'listener pattern');
  const b = Buffer.allocUnsafe(4 + 1 + g + 2 + p);
  b.writeUInt32BE(sid >>> 0, 0);
  putStr16(b, putStr8(b, 4, group, 'queue group'), pattern);
  return frame(T.QueueListen, b);
}

export function encodeQueueUnlisten(sid: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(sid >>> 0, 0);
  return frame(T.QueueUnlisten, b);
}

/** A QueueMsg wraps the payload of a Msg (5) or Call (12) frame for membership sid. */
export function encodeQueueMsg(sid: number, type: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(sid >>> 0, 0);
  b[4] = type;
  return frame(T.QueueMsg, b, payload);
}

export function parseCall(p: Buffer): Call {
  const c = new Cursor(p, 0, p.length);
  const id = c.u64('id');
  return { id, msg: parseMsg(p.subarray(c.off)) };
}

export function parseAnswer(p: Buffer): Answer {
  const c = new Cursor(p, 0, p.length);
  const id = c.u64('id');
  const to = { channel: c.str8('to channel'), agent: c.str8('to agent'), node: c.str8('to node') };
  return { id, to, msg: parseMsg(p.subarray(c.off)) };
}

export function parseQueueListen(p: Buffer): { sid: number; group: string; pattern: string } {
  const c = new Cursor(p, 0, p.length);
  const q = { sid: c.u32('sid'), group: c.str8('group'), pattern: c.str16('pattern') };
  c.done();
  return q;
}

export function parseQueueUnlisten(p: Buffer): number {
  const c = new Cursor(p, 0, p.length);
  const sid = c.u32('sid');
  c.done();
  return sid;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k.toLowerCase()]));

/** Decodes a QueueMsg: the membership, and the wrapped frame's type and payload. */
export function parseQueueMsg(p: Buffer): { sid: number; type: number; payload: Buffer } {
  const c = new Cursor(p, 0, p.length);
  const sid = c.u32('sid');
  const type = c.u8('type');
  if (type !== T.Msg && type !== T.Call) {
    throw new WireError(`bad wrapped frame: wraps a ${TYPE_NAMES[type] ?? 'type ' + type} frame, want msg or call`);
  }
  return { sid, type, payload: p.subarray(c.off) };
}

// ---- decoding ----

class Cursor {
  constructor(
    readonly b: Buffer,
    public off: number,
    readonly end: number,
  ) {}
  need(n: number, what: string): void {
    if (this.off + n > this.end) throw new WireError('truncated frame: ' + what);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.off++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.b.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.b.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }
  str(n: number, what: string): string {
    this.need(n, what);
    const s = this.b.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  str8(what: string): string {
    return this.str(this.u8(what), what);
  }
  str16(what: string): string {
    return this.str(this.u16(what), what);
  }
  done(): void {
    if (this.off !== this.end) throw new WireError('trailing bytes');
  }
}

export function parseHello(p: Buffer): Hello {
  const c = new Cursor(p, 0, p.length);
  const h = { version: c.u8('version'), pid: c.u32('pid'), agentId: c.str8('agent id'), channel: c.str8('channel') };
  c.done();
  return h;
}

export function parseWelcome(p: Buffer): Welcome {
  const c = new Cursor(p, 0, p.length);
  const w = { version: c.u8('version'), maxFrame: c.u32('max frame'), serverId: c.str8('server id') };
  c.done();
  return w;
}

export function parseListen(p: Buffer): string {
  const c = new Cursor(p, 0, p.length);
  const s = c.str16('pattern');
  c.done();
  return s;
}

/** Decodes a Msg payload; data is a view into p, not a copy. */
export function parseMsg(p: Buffer): Msg {
  const c = new Cursor(p, 0, p.length);
  const flags = c.u8('flags');
  const channel = c.str8('channel');
  const agent = c.str8('agent');
  const node = c.str8('node');
  const event = c.str16('event');
  return { flags, channel, agent, node, event, data: p.subarray(c.off) };
}

export function parseError(p: Buffer): ErrorFrame {
  const c = new Cursor(p, 0, p.length);
  const e = { code: c.u16('code'), text: c.str16('text') };
  c.done();
  return e;
}

export function parseU64(p: Buffer, what: string): bigint {
  const c = new Cursor(p, 0, p.length);
  const v = c.u64(what);
  c.done();
  return v;
}

export function parseRequest(p: Buffer): { id: bigint; body: Buffer } {
  const c = new Cursor(p, 0, p.length);
  const id = c.u64('id');
  return { id, body: p.subarray(c.off) };
}

// A one-entry cache of a decoded string: a stream's messages mostly repeat
// their channel, agent, node and event, so comparing a few bytes saves
// decoding and allocating the string again.
class StrCache {
  private readonly bytes = Buffer.allocUnsafe(64);
  private len = -1;
  private str = '';

  get(b: Buffer, s: number, n: number): string {
    if (n === this.len) {
      let i = 0;
      while (i < n && b[s + i] === this.bytes[i]) i++;
      if (i === n) return this.str;
    }
    const str = b.toString('utf8', s, s + n);
    if (n <= 64) {
      b.copy(this.bytes, 0, s, s + n);
      this.len = n;
      this.str = str;
    }
    return str;
  }
}

/** MsgDecoder decodes Msg payloads, caching the strings that repeat. */
export class MsgDecoder {
  private readonly c = new StrCache();
  private readonly a = new StrCache();
  private readonly n = new StrCache();
  private readonly e = new StrCache();

  /** Decodes the Msg payload b[start:end]; data is a view into b. */
  decode(b: Buffer, start: number, end: number): Msg {
    let o = start;
    if (end - o < 4) throw new WireError('truncated frame: ' + ['flags', 'channel', 'agent', 'node'][end - o]);
    const flags = b[o];
    let l = b[o + 1];
    o += 2;
    if (o + l + 1 > end) throw new WireError(o + l > end ? 'truncated frame: channel' : 'truncated frame: agent');
    const channel = this.c.get(b, o, l);
    o += l;
    l = b[o++];
    if (o + l + 1 > end) throw new WireError(o + l > end ? 'truncated frame: agent' : 'truncated frame: node');
    const agent = this.a.get(b, o, l);
    o += l;
    l = b[o++];
    if (o + l > end) throw new WireError('truncated frame: node');
    const node = l === 0 ? '' : this.n.get(b, o, l);
    o += l;
    if (o + 2 > end) throw new WireError('truncated frame: event');
    l = (b[o] << 8) | b[o + 1];
    o += 2;
    if (o + l > end) throw new WireError('truncated frame: event');
    const event = this.e.get(b, o, l);
    o += l;
    return { flags, channel, agent, node, event, data: b.subarray(o, end) };
  }
}

/**
 * FrameReader cuts a byte stream into frames. push() takes each chunk as it
 * arrives and calls onFrame(type, buf, start, end) for every whole frame, in
 * order: the payload is buf[start:end].
 * A frame that spans chunks is assembled in a buffer of its own size, so a
 * 32 MiB frame costs one copy, not one per chunk. Payloads of frames inside
 * one chunk are views into that chunk.
 */
export class FrameReader {
  private head: Buffer | null = null; // bytes of a header not yet complete
  private big: Buffer | null = null; // a frame being assembled
  private bigFill = 0;
  private bigType = 0;

  constructor(
    public max: number,
    private readonly onFrame: (type: number, buf: Buffer, start: number, end: number) => void,
  ) {}

  /** Feeds bytes; throws WireError on a zero or oversized length. */
  push(chunk: Buffer): void {
    let off = 0;
    const end = chunk.length;
    if (this.big !== null) {
      const n = Math.min(this.big.length - this.bigFill, end);
      chunk.copy(this.big, this.bigFill, 0, n);
      this.bigFill += n;
      off = n;
      if (this.bigFill < this.big.length) return;
      const b = this.big;
      this.big = null;
      this.onFrame(this.bigType, b, 0, b.length);
    }
    if (this.head !== null) {
      const need = HEADER_LEN - this.head.length;
      if (end - off < need) {
        this.head = Buffer.concat([this.head, chunk.subarray(off)]);
        return;
      }
      const h = Buffer.concat([this.head, chunk.subarray(off, off + need)]);
      this.head = null;
      off += need;
      const len = this.length(h.readUInt32BE(0));
      const type = h[4];
      const plen = len - 1;
      if (end - off >= plen) {
        this.onFrame(type, chunk, off, off + plen);
        off += plen;
      } else {
        this.startBig(type, plen, chunk, off);
        return;
      }
    }
    while (off < end) {
      if (end - off < HEADER_LEN) {
        this.head = Buffer.from(chunk.subarray(off));
        return;
      }
      const len = this.length(chunk.readUInt32BE(off));
      const type = chunk[off + 4];
      const start = off + HEADER_LEN;
      const plen = len - 1;
      if (end - start < plen) {
        this.startBig(type, plen, chunk, start);
        return;
      }
      off = start + plen;
      this.onFrame(type, chunk, start, off);
    }
  }

  private length(n: number): number {
    if (n === 0) throw new WireError('zero frame length');
    if (n > this.max) throw new WireError(`frame too large: ${n} bytes, the limit is ${this.max}`);
    return n;
  }

  private startBig(type: number, plen: number, chunk: Buffer, off: number): void {
    this.big = Buffer.allocUnsafe(plen);
    this.bigType = type;
    this.bigFill = chunk.copy(this.big, 0, off);
  }
}
