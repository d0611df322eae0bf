// Request/reply and queue groups (protocol version 2, docs/PROTOCOL.md
// section 11): the requests waiting for an answer, and the agent's queue
// group memberships.

import { NoRespondersError, TimeoutError } from './errors';
import type { Handler, Message } from './listeners';
import { compilePattern } from './pattern';
import * as wire from './wire';

interface Pending {
  event: string;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  local: boolean; // the agent's own listeners got it: NoResponders does not end it
}

/** The requests in flight, by id. */
export class Calls {
  private next = 0n;
  private readonly pending = new Map<bigint, Pending>();

  /** Registers a request; returns its id and the Promise of its answer. */
  add(event: string, timeout: number): { id: bigint; answer: Promise<Message>; markLocal: () => void } {
    const id = ++this.next;
    let p!: Pending;
    const answer = new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(event, timeout));
      }, timeout);
      p = { event, resolve, reject, timer, local: false };
    });
    this.pending.set(id, p);
    return { id, answer, markLocal: () => (p.local = true) };
  }

  /** Ends request id with its first answer; later ones are ignored. */
  answer(id: bigint, m: Message): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(m);
  }

  /** NoResponders: ends request id unless its own listeners got it. */
  noResponders(id: bigint): void {
    const p = this.pending.get(id);
    if (p === undefined || p.local) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.reject(new NoRespondersError(p.event));
  }

  /** Ends every request with err. */
  failAll(err: () => Error): void {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err());
    }
    this.pending.clear();
  }

  /** Ends request id with err (the Call could not be sent). */
  fail(id: bigint, err: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.reject(err);
  }
}

/** One queue group membership. */
export interface Membership {
  readonly sid: number;
  readonly pattern: string;
  readonly group: string;
  readonly cb: Handler;
  removed: boolean;
}

const GROUP_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** The agent's queue group memberships, by sid. */
export class Queues {
  private nextSID = 0;
  readonly bySID = new Map<number, Membership>();

  /** Validates and adds a membership. Throws PatternError or a bad group error. */
  add(pattern: string, group: string, cb: Handler, badGroup: (g: string) => Error): Membership {
    compilePattern(pattern);
    if (typeof group !== 'string' || !GROUP_RE.test(group)) throw badGroup(String(group));
    const m: Membership = { sid: ++this.nextSID, pattern, group, cb, removed: false };
    this.bySID.set(m.sid, m);
    return m;
  }

  remove(m: Membership): boolean {
    if (m.removed) return false;
    m.removed = true;
    this.bySID.delete(m.sid);
    return true;
  }

  /** QueueListen frames for every membership, for a new connection. */
  frames(): Buffer[] {
    return [...this.bySID.values()].map((m) => wire.encodeQueueListen(m.sid, m.group, m.pattern));
  }

  clear(): void {
    for (const m of this.bySID.values()) m.removed = true;
    this.bySID.clear();
  }
}

/** Decodes a message's data: JSON parsed, or the bytes as a Buffer. Throws on bad JSON. */
export function decodeData(flags: number, data: Buffer): unknown {
  if (flags & wire.FLAG_JSON) return data.length === 0 ? null : JSON.parse(data.toString('utf8'));
  return data;
}
