// Package netcluster is a message bus for events between processes, on
// one machine or many.
//
// An [Agent] joins a channel of an ncserver (or of a [server.Server]
// embedded in the program) with [Connect]. It sends events with
// [Agent.Emit] and listens with [Agent.On] and [Agent.Once], whose pattern
// is a regular expression matched against the whole event name. Every
// event also reaches the emitting agent's own listeners, in memory.
//
//	a, err := netcluster.Connect(ctx, "A")
//	l, err := a.On("log|audit", func(m *netcluster.Message) { ... })
//	err = a.Emit(ctx, "log", map[string]int{"x": 1})
//	l.Off()
//	err = a.Close(ctx)
//
// # Delivery
//
// The server sends an agent only the events it listens to. A message
// emitted on channel C reaches every other agent of C with a matching
// listener, and the matching agents of each channel that C's
// propagatetochannels rule names; never the sender's own socket, and each
// agent at most once. Messages from one sender arrive in the order they
// were emitted.
//
// # Requests and queue groups
//
// [Agent.Request] sends a request and returns the first answer, which a
// handler gives with [Message.Reply]; the answer goes to the requester
// only. [Agent.OnQueue] joins a queue group: each matching message or
// request goes to one member of each group, picked in turn by the server.
// [ErrNoResponders] says at once that no one the server knows of can
// answer.
//
//	a.OnQueue("price", "pricers", func(m *netcluster.Message) { m.Reply(ctx, price(m)) })
//	answer, err := b.Request(ctx, "price", order)
//
// # Handlers
//
// The handlers of one agent run one at a time, in message order, on a
// goroutine of the agent's own, never on the socket reader: a slow handler
// slows only its own agent. While handlers lag, received messages queue up
// to a bound (see [WithQueueSize]); past it the agent stops reading its
// socket. The server, which never blocks on one agent, pauses the sender
// (5 ms at a time, at most 100 ms while the agent makes no progress), then
// drops messages for it and says so with a [DroppedError] (or disconnects
// it, as configured).
//
// # Connection
//
// When the server goes away the agent reconnects with backoff, sends its
// listeners again, and keeps emitted messages in a bounded buffer
// meanwhile; past that bound Emit returns [ErrBufferFull]. [WithStateHandler]
// observes the connection's state.
//
// # Errors
//
// When the server closes the connection it says why with a [ServerError],
// which matches the error of its code with errors.Is: [ErrSlowConsumer],
// [ErrShutdown], [ErrChannelGone], [ErrTooLarge], ... Errors of the
// agent's own are [ErrClosed], [ErrBufferFull], [ErrNotConnected],
// [ErrInvalidOption], and for requests and queue listeners
// [ErrNoResponders], [ErrNotRequest], [ErrInvalidGroup] and
// [ErrUnsupported].
//
// Control requests to a server (stats, showchannel, reloadconfig, ...)
// are not an Agent's job: package control has their client.
package netcluster
