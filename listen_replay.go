package netcluster

import (
	"errors"
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
// goes on with live messages. The live messages held meanwhile are bounded
// by the agent's queue size (WithQueueSize, counted alike): a replay so
// slow that they pass it is abandoned, reported to the error handler as
// ErrReplayAbandoned, and the listener gets what was held, then live
// messages; replayed messages that arrive later are discarded. On with WithReplay fails at once for a
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

// ErrReplayAbandoned is reported to the error handler (wrapped) for a
// WithReplay listener whose replay took so long that the live messages
// held for it passed the agent's queue size (WithQueueSize): the listener
// gets those and the next live messages without its replay.
var ErrReplayAbandoned = errors.New("netcluster: replay abandoned: the live messages held while it ran passed the queue size")

// holdLive holds live message m for listener l while its replay runs. Held
// messages count as they would in the queue; past the queue size (and one
// message at least) the replay is abandoned: its end, when it comes, is
// ignored, and l gets what was held at once, then live messages. It runs
// on the dispatch goroutine.
func (a *Agent) holdLive(l *Listener, m *Message) {
	if a.opts.borrow {
		m = m.Clone() // it outlives its batch (borrow.go)
	}
	l.held = append(l.held, m)
	l.heldBytes += itemOverhead + len(m.Data)
	if l.heldBytes <= a.opts.queueSize || len(l.held) == 1 {
		return
	}
	a.asyncError(fmt.Errorf("netcluster: replay for listener %q: %w (%d messages, %d bytes, WithQueueSize %d)",
		l.pattern, ErrReplayAbandoned, len(l.held), l.heldBytes, a.opts.queueSize))
	l.abandoned.Store(true)
	a.releaseHeld(l, nil)
}

// endListenReplay passes a WithReplay listener its replayed messages, then
// the live ones held meanwhile, and lets live messages through; nothing
// for a replay abandoned (holdLive). It runs on the dispatch goroutine.
func (a *Agent) endListenReplay(pr *pendingReplay) {
	l := pr.l
	if !l.replaying {
		pr.msgs = nil // abandoned: l has had live messages since
		return
	}
	if pr.err != nil {
		a.asyncError(fmt.Errorf("netcluster: replay for listener %q: %w", l.pattern, pr.err))
	}
	a.releaseHeld(l, pr.msgs)
	pr.msgs = nil
}

// releaseHeld ends l's replay: l gets replayed, then the live messages
// held. It runs on the dispatch goroutine.
func (a *Agent) releaseHeld(l *Listener, replayed []*Message) {
	msgs := append(replayed, l.held...)
	l.held, l.heldBytes, l.replaying = nil, 0, false
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
