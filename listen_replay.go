package netcluster

import (
	"fmt"

	"github.com/netcluster/netcluster/internal/wire"
)

// ListenOption configures a listener added with On or Once.
type ListenOption func(*listenOptions) error

type listenOptions struct {
	replay *wire.Replay
}

// WithReplay makes a listener of a durable channel start with the
// channel's recent history: the stored messages whose event matches its
// pattern, chosen as Agent.Replay chooses them (Last(n), Since(t); with
// neither, the last 10000), each with Message.Replayed set, oldest first.
// The handler gets all of them before any live message: live messages
// that arrive while the replay runs wait (in memory) and follow it, in
// the order they arrived.
//
// The server registers the listener before it reads the stream, and first
// waits until what its agents emitted on the channel before is stored, so
// nothing falls between the two: a matching message is replayed if it was
// stored before the replay began (within Last and Since), and delivered
// live if it reached the server's agents after the listener was
// registered. A message that is both comes twice, replayed then live: a
// message from another server that this server's consumer delivered
// after the listener was registered though it was stored before (the
// consumer catching up, or starting with the channel's first listener),
// or one emitted by another agent of this server while the listener was
// being registered. Handlers that must see each message once drop the
// live copy by their own message ids.
//
// The replay runs once, when the listener is added (at the next
// connection if the agent is not connected, again on the next connection
// if the connection ends first); a listener re-registered after a
// reconnection gets live messages only. A replay that fails (the channel
// is not durable, the server has no NATS backbone or NATS is unreachable)
// is reported to the error handler (WithErrorHandler), and the listener
// goes on with live messages. On with WithReplay fails at once for a
// bad option, or a server known to speak a protocol without replay.
func WithReplay(opts ...ReplayOption) ListenOption {
	return func(lo *listenOptions) error {
		r := wire.Replay{}
		for _, o := range opts {
			if err := o(&r); err != nil {
				return err
			}
		}
		lo.replay = &r
		return nil
	}
}

// endListenReplay passes a WithReplay listener its replayed messages, then
// the live ones held meanwhile, and lets live messages through. It runs on
// the dispatch goroutine.
func (a *Agent) endListenReplay(pr *pendingReplay) {
	l := pr.l
	if pr.err != nil {
		a.asyncError(fmt.Errorf("netcluster: replay for listener %q: %w", l.pattern, pr.err))
	}
	msgs := append(pr.msgs, l.held...)
	pr.msgs, l.held, l.replaying = nil, nil, false
	for _, m := range msgs {
		if l.once {
			if !l.Off() {
				return
			}
		} else if l.off.Load() {
			return
		}
		l.handler(m)
		if a.ctx.Err() != nil {
			return // closed: no handler runs after Close
		}
	}
}
