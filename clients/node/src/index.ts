// netcluster's Node.js client: Agent (also exported as the seed's NCAgent),
// its errors, and the helpers it shares with the Go side.

export { Agent, NCAgent } from './agent';
export type { AgentOptions, LifecycleEvent, State } from './agent';
export type { Message, Handler } from './listeners';
export {
  NetclusterError,
  BufferFullError,
  DroppedError,
  ServerError,
  PatternError,
  ConnectError,
  ClosedError,
  ConnectionLostError,
  NoRespondersError,
  TimeoutError,
  UnsupportedError,
} from './errors';
export { compilePattern } from './pattern';
export { resolveSocketDir, socketPath } from './socketdir';
