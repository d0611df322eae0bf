// Errors of the netcluster client. Each has a stable `code` string to test
// against (`err.code === 'NC_BUFFER_FULL'`) and a message naming what was
// wrong, prefixed "netcluster: " like the Go library's.

/** The base class of every error this package throws or reports. */
export class NetclusterError extends Error {
  /** A stable identifier, e.g. 'NC_BUFFER_FULL'. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('netcluster: ' + message, options);
    this.name = 'NetclusterError';
    this.code = code;
  }
}

/** emit() while the send buffer already holds `bufferSize` bytes. */
export class BufferFullError extends NetclusterError {
  constructor(
    readonly queued: number,
    readonly limit: number,
  ) {
    super(
      'NC_BUFFER_FULL',
      `send buffer full: ${queued} bytes waiting for the server, the limit (bufferSize) is ${limit}; ` +
        "wait for the 'drain' event (emit returned false) or raise bufferSize",
    );
    this.name = 'BufferFullError';
  }
}

/**
 * The server dropped messages for this agent because it did not read fast
 * enough. Reported through the 'error' event, in stream order: the messages
 * were lost just before the next message the listeners see.
 */
export class DroppedError extends NetclusterError {
  constructor(readonly count: number) {
    super('NC_DROPPED', `the server dropped ${count} messages for this slow agent`);
    this.name = 'DroppedError';
  }
}

/**
 * The server closed the connection with an Error frame: a protocol problem,
 * a slow-consumer disconnect, a shutdown. `serverCode` is the wire's error
 * code (docs/PROTOCOL.md, section 5).
 */
export class ServerError extends NetclusterError {
  constructor(
    readonly serverCode: number,
    readonly text: string,
  ) {
    super('NC_SERVER', `server closed the connection: ${text} (code ${serverCode})`);
    this.name = 'ServerError';
  }
}

/** A listener pattern outside the syntax shared by RE2 and JavaScript. */
export class PatternError extends NetclusterError {
  constructor(
    readonly pattern: string,
    readonly offset: number,
    reason: string,
  ) {
    super('NC_BAD_PATTERN', `listener pattern ${JSON.stringify(pattern)}: at offset ${offset}: ${reason}`);
    this.name = 'PatternError';
  }
}

/** Connecting failed: no server, or the server refused the Hello. */
export class ConnectError extends NetclusterError {
  constructor(
    readonly channel: string,
    readonly path: string,
    cause: unknown,
  ) {
    super('NC_CONNECT', `connect to channel ${JSON.stringify(channel)} at ${path}: ${errText(cause)}`, { cause });
    this.name = 'ConnectError';
  }
}

/** A call on an agent that has been closed. */
export class ClosedError extends NetclusterError {
  constructor(what: string) {
    super('NC_CLOSED', `${what}: agent closed`);
    this.name = 'ClosedError';
  }
}

/** A wait (flush, request) cut short because the connection was lost. */
export class ConnectionLostError extends NetclusterError {
  constructor(what: string) {
    super('NC_CONNECTION_LOST', `${what}: connection lost`);
    this.name = 'ConnectionLostError';
  }
}

/** request(): the server knows no agent able to answer listens. */
export class NoRespondersError extends NetclusterError {
  constructor(readonly event: string) {
    super('NC_NO_RESPONDERS', `request ${JSON.stringify(event)}: no responders`);
    this.name = 'NoRespondersError';
  }
}

/** request(): no answer within the timeout. */
export class TimeoutError extends NetclusterError {
  constructor(
    readonly event: string,
    readonly timeout: number,
  ) {
    super('NC_TIMEOUT', `request ${JSON.stringify(event)}: no answer within ${timeout} ms`);
    this.name = 'TimeoutError';
  }
}

/** request() or onQueue() on a server without protocol version 2. */
export class UnsupportedError extends NetclusterError {
  constructor(what: string, version: number) {
    super('NC_UNSUPPORTED', `${what}: the server does not support request/reply and queue groups (it speaks protocol version ${version})`);
    this.name = 'UnsupportedError';
  }
}

function errText(e: unknown): string {
  if (e instanceof Error) {
    const c = (e as NodeJS.ErrnoException).code;
    const m = e.message.replace(/^netcluster: /, '');
    return c && !m.includes(c) ? `${m} (${c})` : m;
  }
  return String(e);
}
