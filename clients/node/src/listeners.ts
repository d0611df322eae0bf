// The agent's message listeners: pattern → callbacks, in registration order,
// with a cache of which listeners match an event name.

import { compilePattern } from './pattern';

/** What a listener receives: the original's envelope plus the origin. */
export interface Message<T = any> {
  /** The event name. */
  event: string;
  /** JSON data, parsed; or a Buffer for data sent as raw bytes. */
  data: T;
  /** The origin channel: where the message was first emitted. */
  channel: string;
  /** The id of the agent that emitted it. */
  agent: string;
  /** The origin server's node id for a message from another machine; '' for a local one. */
  node: string;
  /** True for a message this agent emitted itself, delivered in memory. */
  local: boolean;
  /** Set on a request (see Agent.request): true. */
  request?: true;
  /**
   * On a request only: answers it with data (JSON, or a Buffer as raw
   * bytes). The answer goes to the requester only; it keeps the first.
   */
  reply?: (data?: unknown) => void;
}

/** A message listener callback. */
export type Handler<T = any> = (msg: Message<T>) => void;

/** One registered listener. */
export interface Entry {
  pattern: string;
  re: RegExp;
  cb: Handler;
  once: boolean;
  removed: boolean;
}

const CACHE_MAX = 4096;

export class Listeners {
  private entries: Entry[] = [];
  private readonly counts = new Map<string, number>();
  private cache = new Map<string, Entry[]>();
  private readonly compiled = new Map<string, RegExp>();

  /** The number of listeners. */
  get size(): number {
    return this.entries.length;
  }

  /** The distinct patterns, for Listen frames after a (re)connection. */
  patterns(): IterableIterator<string> {
    return this.counts.keys();
  }

  /**
   * Adds a listener. Returns true if the pattern is new (the server must
   * be told). Throws PatternError for a pattern outside the shared syntax.
   */
  add(pattern: string, cb: Handler, once: boolean): { entry: Entry; isNew: boolean } {
    let re = this.compiled.get(pattern);
    if (re === undefined) {
      re = compilePattern(pattern);
    }
    const entry: Entry = { pattern, re, cb, once, removed: false };
    this.entries = [...this.entries, entry];
    this.cache.clear();
    const n = this.counts.get(pattern) ?? 0;
    this.counts.set(pattern, n + 1);
    this.compiled.set(pattern, re);
    return { entry, isNew: n === 0 };
  }

  /**
   * Removes the most recently added listener with this pattern and
   * callback (or the entry itself). Returns the pattern if no listener is
   * left on it (the server must be told), '' if one was removed but others
   * remain, null if none matched.
   */
  remove(pattern: string, cb: Handler | Entry): string | null {
    let idx = -1;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.pattern === pattern && (e === cb || e.cb === cb)) {
        idx = i;
        break;
      }
    }
    if (idx < 0) return null;
    const e = this.entries[idx];
    e.removed = true;
    this.entries = this.entries.filter((_, i) => i !== idx);
    this.cache.clear();
    const n = (this.counts.get(pattern) ?? 1) - 1;
    if (n > 0) {
      this.counts.set(pattern, n);
      return '';
    }
    this.counts.delete(pattern);
    this.compiled.delete(pattern);
    return pattern;
  }

  /** The listeners whose pattern matches event, in registration order. */
  match(event: string): Entry[] {
    let m = this.cache.get(event);
    if (m === undefined) {
      m = this.entries.filter((e) => e.re.test(event));
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(event, m);
    }
    return m;
  }

  /** Removes every listener. */
  clear(): void {
    for (const e of this.entries) e.removed = true;
    this.entries = [];
    this.counts.clear();
    this.compiled.clear();
    this.cache.clear();
  }
}
