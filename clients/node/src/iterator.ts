// MessageIterator: the queue behind agent.listen(). It asks the agent to
// stop reading from the server when highWaterMark messages wait, and to go
// on when half of them have been taken.

import type { Message } from './listeners';

export interface IteratorHooks {
  pause(): void;
  resume(): void;
  done(): void;
}

export class MessageIterator implements AsyncIterableIterator<Message> {
  private readonly queue: Message[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<Message>) => void) | null = null;
  private finished = false;
  private paused = false;

  constructor(
    private readonly hwm: number,
    private readonly hooks: IteratorHooks,
  ) {}

  /** Adds a message; called by the agent's listener. */
  push(m: Message): void {
    if (this.finished) return;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: m, done: false });
      return;
    }
    this.queue.push(m);
    if (!this.paused && this.queue.length - this.head >= this.hwm) {
      this.paused = true;
      this.hooks.pause();
    }
  }

  /** Ends the iteration after the queued messages (agent closed). */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.head < this.queue.length) {
      const m = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Message;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.paused && this.queue.length - this.head <= this.hwm / 2) {
        this.paused = false;
        this.hooks.resume();
      }
      return Promise.resolve({ value: m, done: false });
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Leaving a for-await loop: the listener is removed. */
  return(): Promise<IteratorResult<Message>> {
    this.end();
    this.queue.length = 0;
    this.head = 0;
    this.hooks.done();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
