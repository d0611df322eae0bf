// Agent: a member of one channel of a netcluster server. The seed's NCAgent
// API (connect(channel, cb), emit, on, once, removeListener, disconnect)
// beside Promise forms (await connect, listen(), flush(), close()).

import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Calls, decodeData, Queues, type Membership } from './calls';
import { ClosedError, ConnectError, ConnectionLostError, DroppedError, NetclusterError, ServerError, UnsupportedError } from './errors';
import { Listeners, type Entry, type Handler, type Message } from './listeners';
import { MessageIterator } from './iterator';
import { Sender } from './sender';
import { Session, type SessionEvents } from './session';
import { checkPrivateDir, privateDir, resolveSocketDir, socketPath } from './socketdir';
import * as wire from './wire';

/** Options of an Agent; every field is optional. */
export interface AgentOptions {
  /** Directory of the channel sockets. Default: the rule of socketdir.json ($NETCLUSTER_SOCKETDIR, /var/run as root, $XDG_RUNTIME_DIR, <temp dir>/netcluster-<uid>). */
  socketDir?: string;
  /** The full socket path, overriding socketDir. */
  socketPath?: string;
  /** The agent id: 1–64 of A–Z a–z 0–9 . _ -. Default: 16 random hex digits. */
  agentId?: string;
  /** Reconnect when the connection is lost. Default true. */
  reconnect?: boolean;
  /** First wait before reconnecting, in ms; it doubles up to maxReconnectWait. Default 10. */
  minReconnectWait?: number;
  /** Longest wait between reconnection attempts, in ms. Default 2000. */
  maxReconnectWait?: number;
  /** Bytes of unsent messages kept (while disconnected, or while the socket is full); past it emit throws BufferFullError. Default 8 MiB. */
  bufferSize?: number;
  /** Bound on the handshake, in ms. Default 10000. */
  connectTimeout?: number;
  /** How long close() waits for buffered messages to be sent, in ms. Default 5000. */
  closeTimeout?: number;
}

/** Lifecycle events, reserved names of on/once/off: they never name messages. */
export type LifecycleEvent = 'connect' | 'disconnect' | 'error' | 'drain';
const LIFECYCLE = new Set<string>(['connect', 'disconnect', 'error', 'drain']);

/** Connection states. */
export type State = 'new' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Agent is a member of one channel: it emits events and listens to them.
 * Listeners run on Node's event loop, one at a time, in message order.
 */
export class Agent {
  /** The agent id, sent in Hello and carried by every message it emits. */
  readonly id: string;
  private readonly opts: Required<Omit<AgentOptions, 'socketDir' | 'socketPath' | 'agentId'>> & AgentOptions;
  private readonly life = new EventEmitter();
  private readonly listeners = new Listeners();
  private readonly sender: Sender;
  private readonly decoder = new wire.MsgDecoder();
  private lastEvent: string | null = null;
  private lastEventLen = 0;
  private _channel: string | null = null;
  private path = '';
  private origin: Buffer = Buffer.alloc(0);
  private _state: State = 'new';
  private session: Session | null = null;
  private maxFrame = wire.DEFAULT_MAX_FRAME;
  private nextToken = 1n;
  private readonly pings = new Map<bigint, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly iterators = new Set<MessageIterator>();
  private readonly pausedBy = new Set<MessageIterator>();
  private retry: NodeJS.Timeout | null = null;
  private wait = 0;
  private closing: Promise<void> | null = null;
  private readonly calls = new Calls();
  private readonly queues = new Queues();
  private version = 0; // the protocol version of the last Welcome; 0 before one
  private helloVersion = wire.VERSION_CALLS;
  private done = false; // closed for good: no more dialling

  constructor(options: AgentOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('netcluster: Agent options must be an object');
    this.opts = {
      reconnect: true,
      minReconnectWait: 10,
      maxReconnectWait: 2000,
      bufferSize: 8 << 20,
      connectTimeout: 10000,
      closeTimeout: 5000,
      ...options,
    };
    this.id = options.agentId ?? randomBytes(8).toString('hex');
    if (!NAME_RE.test(this.id)) {
      throw new NetclusterError('NC_BAD_OPTION', `agentId ${JSON.stringify(this.id)}: want 1–64 of A–Z a–z 0–9 . _ -`);
    }
    for (const k of ['minReconnectWait', 'maxReconnectWait', 'bufferSize', 'connectTimeout', 'closeTimeout'] as const) {
      const v = this.opts[k];
      if (typeof v !== 'number' || !(v > 0)) throw new NetclusterError('NC_BAD_OPTION', `${k} ${String(v)}: want a positive number`);
    }
    this.sender = new Sender(this.opts.bufferSize, () => this.life.emit('drain'));
  }

  /** The channel given to connect, or null before it. */
  get channel(): string | null {
    return this._channel;
  }

  /** The connection's state. */
  get state(): State {
    return this._state;
  }

  /**
   * Joins channel. With a callback (the seed's form), cb(null, agent) runs
   * once the server has welcomed the agent, or cb(err) if it could not
   * connect; without one it returns a Promise of the agent. The first
   * connection is not retried: no server is an error naming the socket.
   */
  connect(channel: string, cb: (err: Error | null, agent?: Agent) => void): void;
  connect(channel: string): Promise<this>;
  connect(channel: string, cb?: (err: Error | null, agent?: Agent) => void): Promise<this> | void {
    if (typeof channel !== 'string' || !NAME_RE.test(channel)) {
      throw new NetclusterError('NC_BAD_CHANNEL', `connect: channel ${JSON.stringify(channel)}: want 1–64 of A–Z a–z 0–9 . _ -`);
    }
    if (this._state !== 'new') throw new NetclusterError('NC_ALREADY', `connect: the agent is ${this._state} (channel ${JSON.stringify(this._channel)}); use a new Agent for another channel`);
    const dir = resolveSocketDir(this.opts.socketDir);
    if (this.opts.socketPath === undefined && dir === privateDir()) {
      const why = checkPrivateDir(dir);
      if (why !== null) throw new NetclusterError('NC_UNSAFE_DIR', `connect: unsafe socket directory: ${why}`);
    }
    this._channel = channel;
    this.path = this.opts.socketPath ?? socketPath(dir, channel);
    this.origin = wire.msgOrigin(channel, this.id);
    this._state = 'connecting';
    const p = this.dial().then(
      () => this,
      (err: Error) => {
        this._state = 'closed';
        throw err;
      },
    );
    if (cb === undefined) return p;
    if (typeof cb !== 'function') throw new TypeError('netcluster: connect: the callback must be a function');
    p.then(
      (a) => process.nextTick(cb, null, a),
      (e) => process.nextTick(cb, e),
    );
  }

  // dial opens a session; it resolves once welcomed, rejects on failure.
  // A server that refuses version 2 as unknown is dialled again with 1.
  private async dial(): Promise<void> {
    try {
      await this.dialVersion(this.helloVersion);
    } catch (e) {
      const cause = e instanceof ConnectError ? e.cause : undefined;
      if (this.helloVersion === wire.VERSION || !(cause instanceof ServerError) || cause.serverCode !== wire.ErrorCode.Version) throw e;
      this.helloVersion = wire.VERSION;
      await this.dialVersion(wire.VERSION);
    }
  }

  private dialVersion(version: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ev: SessionEvents = {
        welcome: (s, w) => {
          if (this.done) {
            // close() ran while we dialled.
            s.destroy();
            reject(new ClosedError('connect'));
            return;
          }
          this.onWelcome(s, w);
          resolve();
        },
        failed: (err) => reject(err),
        frame: (type, b, start, end) => this.onFrame(type, b, start, end),
        closed: (err) => this.onClosed(err),
      };
      new Session(this._channel!, this.id, this.path, this.opts.connectTimeout, ev, version);
    });
  }

  private onWelcome(s: Session, w: wire.Welcome): void {
    if (this.done) {
      s.destroy();
      return;
    }
    this.session = s;
    this.maxFrame = w.maxFrame;
    this.version = w.version;
    this.wait = 0;
    const listens: Buffer[] = [];
    for (const p of this.listeners.patterns()) listens.push(wire.encodeListen(wire.T.Listen, p));
    if (w.version >= wire.VERSION_CALLS) listens.push(...this.queues.frames());
    else this.calls.failAll(() => new UnsupportedError('request', w.version));
    this.sender.attach(s.sock, listens);
    if (this.pausedBy.size > 0) s.sock.pause();
    this._state = 'connected';
    this.life.emit('connect');
  }

  private onClosed(err: Error | null): void {
    this.session = null;
    this.sender.detach();
    for (const [, p] of this.pings) p.reject(new ConnectionLostError('flush'));
    this.pings.clear();
    if (this.done) return;
    if (this.closing !== null) {
      // close() is still waiting to send what is buffered.
      if (this.opts.reconnect) this.scheduleRetry();
      return;
    }
    this._state = this.opts.reconnect ? 'reconnecting' : 'closed';
    this.life.emit('disconnect', err);
    if (this.opts.reconnect) this.scheduleRetry();
    else this.finish();
  }

  private scheduleRetry(): void {
    this.wait = this.wait === 0 ? this.opts.minReconnectWait : Math.min(2 * this.wait, this.opts.maxReconnectWait);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.done) return;
      this.dial().catch(() => {
        if (!this.done) this.scheduleRetry();
      });
    }, this.wait);
  }

  private onFrame(type: number, b: Buffer, start: number, end: number): void {
    if (type === wire.T.Msg) {
      if (this.listeners.size === 0 || this.closing !== null) return;
      return this.onMsg(this.decoder.decode(b, start, end));
    }
    const p = b.subarray(start, end);
    switch (type) {
      case wire.T.Call:
        if (this.listeners.size === 0 || this.closing !== null) return;
        return this.onMsg(this.decoder.decode(b, start + 8, end), p.readBigUInt64BE(0));
      case wire.T.QueueMsg:
        return this.onQueueMsg(p);
      case wire.T.Answer: {
        const a = wire.parseAnswer(p);
        return this.calls.answer(a.id, this.envelope(a.msg, Buffer.from(a.msg.data)));
      }
      case wire.T.NoResponders:
        return this.calls.noResponders(wire.parseU64(p, 'id'));
      case wire.T.Pong: {
        const tok = wire.parseU64(p, 'token');
        const w = this.pings.get(tok);
        if (w !== undefined) {
          this.pings.delete(tok);
          w.resolve();
        }
        return;
      }
      case wire.T.Ping:
        return this.sender.control(wire.encodeU64(wire.T.Pong, wire.parseU64(p, 'token')));
      case wire.T.Dropped: {
        const n = wire.parseU64(p, 'count');
        return this.report(new DroppedError(Number(n)));
      }
      case wire.T.Error: {
        const e = wire.parseError(p);
        this.session?.serverError(e);
        return;
      }
      default:
        throw new wire.WireError(`unexpected frame type ${type} from the server`);
    }
  }

  private onMsg(m: wire.Msg, callId?: bigint): void {
    const entries = this.listeners.match(m.event);
    if (entries.length === 0) return;
    this.deliver(entries, this.envelope(m, m.data, callId));
  }

  // onQueueMsg hands a message to the membership the server picked. One
  // for a membership removed meanwhile is dropped: the server wrote it to
  // this agent, so it is no one else's (at most once).
  private onQueueMsg(p: Buffer): void {
    const q = wire.parseQueueMsg(p);
    const m = this.queues.bySID.get(q.sid);
    if (m === undefined || this.closing !== null) return;
    const off = q.type === wire.T.Call ? 8 : 0;
    const msg = this.decoder.decode(q.payload, off, q.payload.length);
    const env = this.envelope(msg, msg.data, off ? q.payload.readBigUInt64BE(0) : undefined);
    try {
      m.cb.call(this, env);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  // envelope makes the listeners' message; a Call gets reply().
  private envelope(m: wire.Msg, bytes: Buffer, callId?: bigint): Message {
    let data: unknown;
    try {
      data = decodeData(m.flags, bytes);
    } catch (e) {
      data = Buffer.from(bytes);
      this.report(new NetclusterError('NC_BAD_JSON', `message ${JSON.stringify(m.event)} from ${m.agent}: data flagged JSON is not valid JSON; delivered as a Buffer`, { cause: e }));
    }
    const env: Message = { event: m.event, data, channel: m.channel, agent: m.agent, node: m.node, local: false };
    if (callId !== undefined) {
      const to = { channel: m.channel, agent: m.agent, node: m.node };
      env.request = true;
      env.reply = (answer?: unknown) => this.answer(callId, to, m.event, answer);
    }
    return env;
  }

  // answer sends the Answer to request id of agent `to`.
  private answer(id: bigint, to: wire.Answer['to'], event: string, data: unknown): void {
    if (this.closing !== null || this._state === 'closed') throw new ClosedError('reply');
    const [flags, bytes] = encodeData(data);
    this.sender.checkRoom();
    this.sender.kept(wire.encodeAnswer({ id, to, msg: { flags, channel: this._channel!, agent: this.id, node: '', event, data: bytes } }));
  }

  /**
   * Sends a request: an event that asks for an answer, routed like emit
   * (listeners, queue groups, propagation, the network), and resolves to
   * the first answer (a message: event, data, channel, agent, node). The
   * agent's own matching listeners get it in memory, synchronously, and
   * may answer it. Rejects with NoRespondersError at once when the server
   * knows no agent able to answer listens (it cannot know about other
   * machines: then the timeout applies), TimeoutError after timeout ms
   * (default 5000), UnsupportedError if the server lacks protocol version
   * 2, ClosedError on close(). A request survives a reconnection: the
   * answer is addressed to the agent's id.
   */
  request(event: string, data?: unknown, options: { timeout?: number } = {}): Promise<Message> {
    try {
      const timeout = options.timeout ?? 5000;
      if (!(timeout > 0)) throw new NetclusterError('NC_BAD_OPTION', `request: timeout ${timeout}: want a positive number of ms`);
      this.checkEmit('request', event);
      if (this.version !== 0 && this.version < wire.VERSION_CALLS) throw new UnsupportedError('request', this.version);
      const [flags, bytes] = encodeData(data);
      const msg = { flags, channel: this._channel!, agent: this.id, node: '', event, data: bytes };
      const size = wire.encodeMsgPayload(msg).length + 8;
      if (size > this.maxFrame) throw new NetclusterError('NC_TOO_LARGE', `request: ${JSON.stringify(event)} of ${size} bytes; the server's limit (maxframe) is ${this.maxFrame}`);
      this.sender.checkRoom();
      const c = this.calls.add(event, timeout);
      this.sender.kept(wire.encodeCall({ id: c.id, msg }));
      const entries = this.listeners.size > 0 ? this.listeners.match(event) : [];
      if (entries.length > 0) {
        c.markLocal();
        const env: Message = { event, data: decodeData(flags, Buffer.from(bytes)), channel: msg.channel, agent: this.id, node: '', local: true, request: true };
        env.reply = (answer?: unknown) => {
          const [f, b] = encodeData(answer);
          this.calls.answer(c.id, { event, data: decodeData(f, b), channel: msg.channel, agent: this.id, node: '', local: true });
        };
        this.deliver(entries, env);
      }
      return c.answer;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Joins the queue group `group` for the events matching pattern: of each
   * such message or request, emitted on the channel or propagated to it,
   * the server gives exactly one member of each group a copy (plain
   * listeners get theirs as usual), picking members in turn and passing
   * over one whose buffer is nearly full. Messages queued for a member
   * that leaves, and not yet written to it, go to another member; what was
   * written is the member's (at most once). The agent's own messages and
   * requests may come back to its own memberships. group is 1–64 of A–Z
   * a–z 0–9 . _ -. Returns a handle whose off() leaves the group.
   */
  onQueue(pattern: string, group: string, cb: Handler): { readonly pattern: string; readonly group: string; off(): void } {
    if (typeof cb !== 'function') throw new TypeError(`netcluster: queue listener for ${JSON.stringify(pattern)} must be a function`);
    if (this.closing !== null || this._state === 'closed') throw new ClosedError('onQueue');
    if (this.version !== 0 && this.version < wire.VERSION_CALLS) throw new UnsupportedError('onQueue', this.version);
    const m = this.queues.add(pattern, group, cb, (g) => new NetclusterError('NC_BAD_GROUP', `onQueue: group ${JSON.stringify(g)}: want 1–64 of A–Z a–z 0–9 . _ -`));
    if (this.session !== null) this.sender.control(wire.encodeQueueListen(m.sid, m.group, m.pattern));
    return { pattern, group, off: () => this.offQueue(m) };
  }

  private offQueue(m: Membership): void {
    if (this.queues.remove(m) && this.session !== null && this.closing === null) this.sender.control(wire.encodeQueueUnlisten(m.sid));
  }

  private deliver(entries: Entry[], msg: Message): void {
    for (const e of entries) {
      if (e.removed) continue;
      if (e.once) this.removeEntry(e);
      try {
        e.cb.call(this, msg);
      } catch (err) {
        // A throwing listener is the program's uncaught exception, as with
        // EventEmitter, but after this agent's state is consistent.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  /** Reports err on 'error', or as a process warning if nobody listens. */
  private report(err: Error): void {
    if (this.life.listenerCount('error') > 0) this.life.emit('error', err);
    else process.emitWarning(err);
  }

  /**
   * Sends event with data to the channel, and delivers it in memory to
   * this agent's own matching listeners (synchronously, before emit
   * returns; msg.local is true). data is sent as JSON, a Buffer or
   * Uint8Array as raw bytes. Returns false when the send buffer is
   * congested: wait for the 'drain' event before emitting much more.
   * Throws BufferFullError once bufferSize bytes wait.
   */
  private checkEmit(op: string, event: string): void {
    if (typeof event !== 'string' || event.length === 0) throw new NetclusterError('NC_BAD_EVENT', `${op}: event name ${JSON.stringify(event)}: want a non-empty string`);
    if (this.closing !== null || this._state === 'closed') throw new ClosedError(op);
    if (this._channel === null) throw new NetclusterError('NC_NOT_CONNECTED', `${op} before connect: call connect(channel) first`);
    if (Buffer.byteLength(event, 'utf8') > wire.MAX_STR16) throw new NetclusterError('NC_BAD_EVENT', `${op}: event name of ${Buffer.byteLength(event, 'utf8')} bytes; the limit is ${wire.MAX_STR16}`);
  }

  emit(event: string, data?: unknown): boolean {
    if (event !== this.lastEvent || this._channel === null || this.closing !== null || this._state === 'closed') this.checkEmit('emit', event);
    let eventLen = this.lastEventLen;
    if (event !== this.lastEvent) {
      eventLen = Buffer.byteLength(event, 'utf8');
      this.lastEvent = event;
      this.lastEventLen = eventLen;
    }
    if (eventLen > wire.MAX_STR16) throw new NetclusterError('NC_BAD_EVENT', `emit: event name of ${eventLen} bytes; the limit is ${wire.MAX_STR16}`);
    let flags: number;
    let payload: string | Uint8Array;
    let dataLen: number;
    if (data instanceof Uint8Array) {
      flags = 0;
      payload = data;
      dataLen = data.length;
    } else {
      flags = wire.FLAG_JSON;
      const s = JSON.stringify(data);
      payload = s === undefined ? 'null' : s;
      dataLen = Buffer.byteLength(payload, 'utf8');
    }
    const frameLen = wire.msgFrameLen(this.origin, eventLen, dataLen);
    if (frameLen - 4 > this.maxFrame) {
      throw new NetclusterError('NC_TOO_LARGE', `emit: message ${JSON.stringify(event)} of ${frameLen - 4} bytes; the server's limit (maxframe) is ${this.maxFrame}`);
    }
    this.sender.checkRoom();
    this.sender.msg(frameLen, flags, this.origin, event, eventLen, payload, dataLen);
    if (this.listeners.size > 0) {
      const entries = this.listeners.match(event);
      if (entries.length > 0) {
        const local = payload instanceof Uint8Array ? Buffer.from(payload) : JSON.parse(payload);
        this.deliver(entries, { event, data: local, channel: this._channel!, agent: this.id, node: '', local: true });
      }
    }
    if (this.sender.congested) {
      this.sender.owesDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Adds a listener for every message whose whole event name matches
   * pattern (a regular expression in the syntax RE2 and JavaScript share;
   * anything else throws PatternError). The names 'connect', 'disconnect',
   * 'error' and 'drain' are the agent's lifecycle events instead.
   */
  on(pattern: string, cb: Handler): this;
  on(event: LifecycleEvent, cb: (...args: any[]) => void): this;
  on(pattern: string, cb: (...args: any[]) => void): this {
    return this.add(pattern, cb, false);
  }

  /** Like on, but the listener is removed before its first call. */
  once(pattern: string, cb: Handler): this;
  once(event: LifecycleEvent, cb: (...args: any[]) => void): this;
  once(pattern: string, cb: (...args: any[]) => void): this {
    return this.add(pattern, cb, true);
  }

  /** Alias of on. */
  addListener(pattern: string, cb: Handler): this {
    return this.add(pattern, cb, false);
  }

  private add(pattern: string, cb: (...args: any[]) => void, once: boolean): this {
    if (typeof cb !== 'function') throw new TypeError(`netcluster: listener for ${JSON.stringify(pattern)} must be a function`);
    if (LIFECYCLE.has(pattern)) {
      if (once) this.life.once(pattern, cb);
      else this.life.on(pattern, cb);
      return this;
    }
    if (this.closing !== null || this._state === 'closed') throw new ClosedError('on');
    const { isNew } = this.listeners.add(pattern, cb, once);
    if (isNew && this.session !== null) this.sender.control(wire.encodeListen(wire.T.Listen, pattern));
    return this;
  }

  /** Removes exactly one listener: the last added with this pattern and callback. */
  removeListener(pattern: string, cb: (...args: any[]) => void): this {
    if (LIFECYCLE.has(pattern)) {
      this.life.removeListener(pattern, cb);
      return this;
    }
    this.unlisten(this.listeners.remove(pattern, cb));
    return this;
  }

  /** Alias of removeListener. */
  off(pattern: string, cb: (...args: any[]) => void): this {
    return this.removeListener(pattern, cb);
  }

  private removeEntry(e: Entry): void {
    this.unlisten(this.listeners.remove(e.pattern, e));
  }

  private unlisten(gone: string | null): void {
    if (gone && this.session !== null && this.closing === null) this.sender.control(wire.encodeListen(wire.T.Unlisten, gone));
  }

  /**
   * Returns an async iterator of the messages matching pattern:
   * `for await (const msg of agent.listen('log.*'))`. Messages wait in a
   * queue of up to highWaterMark (default 1024); past it the agent stops
   * reading from the server until the loop catches up (the server then
   * buffers, and drops with a DroppedError when its buffer is full).
   * Leaving the loop removes the listener; close() ends it.
   */
  listen(pattern: string, options: { highWaterMark?: number } = {}): AsyncIterableIterator<Message> {
    const hwm = options.highWaterMark ?? 1024;
    if (!(hwm >= 1)) throw new NetclusterError('NC_BAD_OPTION', `listen: highWaterMark ${hwm}: want at least 1`);
    let it: MessageIterator;
    const cb: Handler = (m) => it.push(m);
    it = new MessageIterator(hwm, {
      pause: () => this.pause(it, true),
      resume: () => this.pause(it, false),
      done: () => {
        this.iterators.delete(it);
        this.pause(it, false);
        if (this.closing === null) this.removeListener(pattern, cb);
      },
    });
    this.add(pattern, cb, false);
    this.iterators.add(it);
    return it;
  }

  private pause(it: MessageIterator, on: boolean): void {
    const before = this.pausedBy.size;
    if (on) this.pausedBy.add(it);
    else this.pausedBy.delete(it);
    const sock = this.session?.sock;
    if (sock === undefined) return;
    if (before === 0 && this.pausedBy.size > 0) sock.pause();
    if (before > 0 && this.pausedBy.size === 0) sock.resume();
  }

  /**
   * Resolves once the server has acted on everything sent before it
   * (messages routed, listeners in effect). Waits for a reconnection if
   * disconnected; rejects if the connection is lost meanwhile.
   */
  async flush(): Promise<void> {
    if (this.closing !== null || this._state === 'closed') throw new ClosedError('flush');
    if (this._channel === null) throw new NetclusterError('NC_NOT_CONNECTED', 'flush before connect');
    while (this.session === null) {
      await new Promise<void>((resolve, reject) => {
        const ok = () => {
          this.life.off('closed', ko);
          resolve();
        };
        const ko = () => {
          this.life.off('connect', ok);
          reject(new ClosedError('flush'));
        };
        this.life.once('connect', ok);
        this.life.once('closed', ko);
      });
    }
    const tok = this.nextToken++;
    return new Promise((resolve, reject) => {
      this.pings.set(tok, { resolve, reject });
      this.sender.control(wire.encodeU64(wire.T.Ping, tok));
    });
  }

  /**
   * Sends what is buffered (waiting up to closeTimeout, also for a
   * reconnection), closes the connection and stops reconnecting. No
   * listener runs after it resolves. It rejects, after closing, if
   * buffered messages could not be sent. Calling it again returns the same
   * Promise.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    const wasNew = this._state === 'new';
    this.closing = this.doClose(wasNew);
    return this.closing;
  }

  private async doClose(wasNew: boolean): Promise<void> {
    let unsent = 0;
    if (!wasNew) {
      this.sender.cut();
      const deadline = Date.now() + this.opts.closeTimeout;
      // Buffered messages wait for a reconnection while the timeout allows.
      while (this.session === null && this.sender.hasMsgs() && this._state === 'reconnecting' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      this.done = true;
      if (this.retry !== null) clearTimeout(this.retry);
      this.retry = null;
      const s = this.session;
      if (s !== null) await s.end(Math.max(0, deadline - Date.now()));
      unsent = this.sender.discard();
    }
    this._state = 'closed';
    this.finish();
    if (unsent > 0) throw new NetclusterError('NC_UNSENT', `close: ${unsent} bytes of messages were not sent (no connection within closeTimeout)`);
  }

  private finish(): void {
    this.done = true;
    this.calls.failAll(() => new ClosedError('request'));
    this.queues.clear();
    this.listeners.clear();
    for (const it of this.iterators) it.end();
    this.iterators.clear();
    this.life.emit('closed');
  }

  /** The seed's form of close: fire and forget (failures go to 'error'). */
  disconnect(): void {
    this.close().catch((e: Error) => this.report(e));
  }
}

// encodeData gives the flags and bytes of data: a Buffer or Uint8Array as
// raw bytes, anything else as JSON (undefined as null).
function encodeData(data: unknown): [number, Buffer] {
  if (data instanceof Uint8Array) return [0, Buffer.from(data)];
  const s = JSON.stringify(data);
  return [wire.FLAG_JSON, Buffer.from(s === undefined ? 'null' : s, 'utf8')];
}

/** The seed's name for Agent. */
export const NCAgent = Agent;
