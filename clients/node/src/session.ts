// Session: one connection to the server. It dials, sends the preamble and
// Hello, waits for Welcome (or an Error), then hands every frame to the
// agent until the socket closes, and says once why it closed.

import { connect, type IpcNetConnectOpts, type Socket } from 'node:net';
import { ConnectError, ServerError } from './errors';
import * as wire from './wire';

export interface SessionEvents {
  /** The server accepted the Hello; frames may follow at once. */
  welcome(s: Session, w: wire.Welcome): void;
  /** The handshake failed; closed() is not called. */
  failed(err: Error): void;
  /** A frame after Welcome. A throw ends the session (a protocol error). */
  frame(type: number, buf: Buffer, start: number, end: number): void;
  /** The session ended after Welcome: err says why (null: closed by us). */
  closed(err: Error | null): void;
}

export class Session {
  readonly sock: Socket;
  private welcomed = false;
  private ended = false;
  private cause: Error | null = null;
  private readonly reader: wire.FrameReader;
  private timer: NodeJS.Timeout | null;

  constructor(
    private readonly channel: string,
    agentId: string,
    private readonly path: string,
    timeout: number,
    private readonly ev: SessionEvents,
    version: number = wire.VERSION_CALLS,
  ) {
    this.reader = new wire.FrameReader(wire.DEFAULT_MAX_FRAME, (t, b, s, e) => this.onFrame(t, b, s, e));
    // A high-water mark of a few batches: socket.write says "wait" only when
    // the kernel is really behind, not after every 64 KiB batch.
    const sock = connect({ path, writableHighWaterMark: 512 << 10 } as IpcNetConnectOpts);
    this.sock = sock;
    sock.setNoDelay?.(true);
    this.timer = setTimeout(() => this.fail(new Error(`no Welcome from the server within ${timeout} ms`)), timeout);
    sock.once('connect', () => {
      const hello = wire.encodeHello({ version, pid: process.pid, agentId, channel });
      sock.write(Buffer.concat([wire.PREAMBLE, hello]));
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('the server closed the connection')));
  }

  private onFrame(type: number, b: Buffer, start: number, end: number): void {
    if (this.ended) return;
    if (this.welcomed) {
      this.ev.frame(type, b, start, end);
      return;
    }
    const p = b.subarray(start, end);
    if (type === wire.T.Welcome) {
      const w = wire.parseWelcome(p);
      this.welcomed = true;
      this.clearTimer();
      // Messages to us may be as large as the server allows.
      this.reader.max = Math.max(w.maxFrame, wire.DEFAULT_MAX_FRAME);
      this.ev.welcome(this, w);
      return;
    }
    if (type === wire.T.Error) {
      const e = wire.parseError(p);
      throw new ServerError(e.code, e.text);
    }
    throw new wire.WireError(`expected a Welcome from the server, got frame type ${type}`);
  }

  /** Records the server's Error frame; the server closes after it. */
  serverError(e: wire.ErrorFrame): void {
    this.cause ??= new ServerError(e.code, e.text);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // fail ends the session once, with the first reason.
  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    this.sock.destroy();
    if (!this.welcomed) {
      this.ev.failed(new ConnectError(this.channel, this.path, err));
      return;
    }
    this.ev.closed(this.cause ?? err);
  }

  /** Closes the session at once. */
  destroy(): void {
    this.fail(new Error('closed by the agent'));
  }

  /**
   * Ends the session gracefully: what was written is sent, then the
   * socket closes; after ms it is destroyed.
   */
  end(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.sock.destroy(), ms);
      this.sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.cause = null;
      this.ended = true;
      this.sock.resume(); // see the server's end even if reading was paused
      this.sock.end();
      this.ev.closed(null);
    });
  }
}
