// The agent's outgoing side: frames are packed into 64 KiB batches and
// handed to socket.write, which is obeyed: once it returns false nothing
// more is written until 'drain', and frames wait here, bounded by
// bufferSize. While disconnected they wait here too; on a new connection the
// Msg frames are sent after the listener set, and the rest (Listen, Ping of
// the old connection) are dropped.

import type { Socket } from 'node:net';
import { BufferFullError } from './errors';
import { putMsg } from './wire';

const BATCH = 64 << 10;

interface Pending {
  buf: Buffer;
  msgs: boolean; // only Msg frames
}

export class Sender {
  private sock: Socket | null = null;
  private blocked = false; // socket.write returned false
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private batch = Buffer.allocUnsafe(BATCH);
  private start = 0; // batch[start:end] not yet handed on
  private end = 0;
  private scheduled = false;
  /** Set when emit returned false: 'drain' is owed. */
  owesDrain = false;

  constructor(
    readonly limit: number,
    private readonly onDrain: () => void,
  ) {}

  /** Bytes not yet handed to the socket. */
  get queued(): number {
    return this.pendingBytes + (this.end - this.start);
  }

  /** True while the caller should wait for 'drain' before emitting more. */
  get congested(): boolean {
    return this.blocked || this.sock === null || this.pendingBytes > 0;
  }

  /** Throws BufferFullError when the buffer already holds limit bytes. */
  checkRoom(): void {
    const q = this.queued;
    if (q >= this.limit) throw new BufferFullError(q, this.limit);
  }

  /** Queues one Msg frame of frameLen bytes. */
  msg(frameLen: number, flags: number, origin: Buffer, event: string, eventLen: number, data: string | Uint8Array, dataLen: number): void {
    if (frameLen > BATCH) {
      this.cut();
      const buf = Buffer.allocUnsafe(frameLen);
      putMsg(buf, 0, flags, origin, event, eventLen, data, dataLen);
      this.put(buf, true);
      return;
    }
    if (this.batch.length - this.end < frameLen) {
      this.cut();
      this.batch = Buffer.allocUnsafe(BATCH);
      this.start = this.end = 0;
    }
    this.end = putMsg(this.batch, this.end, flags, origin, event, eventLen, data, dataLen);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        this.cut();
      });
    }
  }

  /** Queues a frame that is not a Msg, after everything before it. */
  control(frame: Buffer): void {
    this.cut();
    this.put(frame, false);
  }

  /**
   * Queues a frame kept, like Msg frames, across a reconnection (Call and
   * Answer: they are addressed by agent id, so they survive it).
   */
  kept(frame: Buffer): void {
    this.cut();
    this.put(frame, true);
  }

  /** Hands the batch so far on. */
  cut(): void {
    if (this.end > this.start) {
      const b = this.batch.subarray(this.start, this.end);
      this.start = this.end;
      this.put(b, true);
    }
  }

  private put(buf: Buffer, msgs: boolean): void {
    if (this.sock !== null && !this.blocked && this.pending.length === 0) {
      this.blocked = !this.sock.write(buf);
      return;
    }
    this.pending.push({ buf, msgs });
    this.pendingBytes += buf.length;
  }

  /**
   * Makes sock the connection: first the frames in first (Listen frames of
   * every pattern), then the Msg frames that waited.
   */
  attach(sock: Socket, first: Buffer[]): void {
    this.cut();
    const waiting = this.pending.filter((p) => p.msgs);
    this.pending = [...first.map((buf) => ({ buf, msgs: false })), ...waiting];
    this.pendingBytes = this.pending.reduce((n, p) => n + p.buf.length, 0);
    this.sock = sock;
    this.blocked = false;
    sock.on('drain', () => {
      if (this.sock === sock) {
        this.blocked = false;
        this.pump();
      }
    });
    this.pump();
  }

  /** Forgets the connection; what was not handed to it stays queued. */
  detach(): void {
    this.sock = null;
    this.blocked = false;
  }

  /** Drops everything queued; returns how many bytes that was. */
  discard(): number {
    this.cut();
    const n = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    return n;
  }

  /** True when the pending messages include Msg frames. */
  hasMsgs(): boolean {
    return this.end > this.start || this.pending.some((p) => p.msgs);
  }

  private pump(): void {
    const sock = this.sock;
    while (sock !== null && !this.blocked && this.pending.length > 0) {
      const p = this.pending.shift()!;
      this.pendingBytes -= p.buf.length;
      this.blocked = !sock.write(p.buf);
    }
    if (!this.blocked && this.pending.length === 0 && this.owesDrain) {
      this.owesDrain = false;
      this.onDrain();
    }
  }
}
