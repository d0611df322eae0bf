package netcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// ReplayOption chooses which stored messages Replay returns.
type ReplayOption func(*wire.Replay) error

// Last asks for at most the last n stored messages (1 to 10000).
func Last(n int) ReplayOption {
	return func(r *wire.Replay) error {
		if n < 1 || n > wire.MaxReplay {
			return fmt.Errorf("netcluster: Last(%d): want 1 to %d", n, wire.MaxReplay)
		}
		r.Last = uint32(n)
		return nil
	}
}

// Since asks for the messages stored at or after t.
func Since(t time.Time) ReplayOption {
	return func(r *wire.Replay) error {
		if t.IsZero() || t.UnixNano() <= 0 {
			return fmt.Errorf("netcluster: Since(%v): want a time after 1970", t)
		}
		r.Since = t.UnixNano()
		return nil
	}
}

// pendingReplay is a Replay waiting for its ReplayEnd. The server answers
// replays in the order they were asked, each with its messages then its
// end, so the replayed messages that arrive belong to the oldest one. One
// in flight when the connection ends is asked again on the next.
type pendingReplay struct {
	id   uint64
	req  wire.Replay
	msgs []*Message
	done chan replayResult // Agent.Replay's; nil for a listener's
	l    *Listener         // WithReplay's listener
	err  error             // a listener's replay: why it failed

	discarded int // replayed messages discarded, its listener gone live (holdLive)
}

type replayResult struct {
	msgs []*Message
	err  error
}

// Replay returns the stored recent history of the agent's channel, which
// must be durable (a JetStream stream on the server's NATS backbone): the
// messages whose event matches pattern, oldest first, each with Replayed
// set. Last(n) keeps the last n of them, Since(t) those stored at or after
// t; with both, the last n since t; with neither, the last 10000. The
// messages do not go to the agent's listeners. Replay fails with the
// server's reason for a channel that is not durable or a server without a
// backbone, and with ctx's error if ctx ends first.
func (a *Agent) Replay(ctx context.Context, pattern string, opts ...ReplayOption) ([]*Message, error) {
	r := wire.Replay{Pattern: pattern}
	if pattern == "" || len(pattern) > wire.MaxPatternLen {
		return nil, fmt.Errorf("netcluster: replay: pattern of %d bytes; want 1 to %d", len(pattern), wire.MaxPatternLen)
	}
	for _, o := range opts {
		if err := o(&r); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	if a.version != 0 && a.version < wire.VersionCalls {
		a.mu.Unlock()
		return nil, fmt.Errorf("netcluster: replay %q: %w (it speaks protocol version %d)", pattern, ErrUnsupported, a.version)
	}
	if err := a.waitRoomLocked(ctx, "replay", pattern, wire.HeaderLen+22+len(pattern)); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	pr := &pendingReplay{req: r, done: make(chan replayResult, 1)}
	a.startReplayLocked(pr)
	a.mu.Unlock()
	select {
	case res := <-pr.done:
		if res.err != nil {
			return nil, fmt.Errorf("netcluster: replay %q: %w", pattern, res.err)
		}
		return res.msgs, nil
	case <-ctx.Done():
		// Its entry stays until its end arrives: the messages before it
		// are its own, not the next replay's.
		return nil, fmt.Errorf("netcluster: replay %q: %w", pattern, ctx.Err())
	}
}

// startReplayLocked numbers pr, registers it and sends its Replay frame
// (at the next connection if there is none now: attach). Call with mu
// held.
func (a *Agent) startReplayLocked(pr *pendingReplay) {
	a.nextReplay++
	pr.id, pr.req.ID = a.nextReplay, a.nextReplay
	a.replays = append(a.replays, pr)
	if a.nc != nil {
		a.queueFrame(wire.AppendReplay(a.out, pr.req))
	}
}

// finishReplayLocked hands pr its result: to Agent.Replay's caller, or, for
// a listener's replay, to the dispatch goroutine, after the live messages
// that came before the end. Call with mu held.
func (a *Agent) finishReplayLocked(pr *pendingReplay, res replayResult) {
	if pr.l == nil {
		pr.done <- res
		return
	}
	pr.msgs, pr.err = res.msgs, res.err
	a.q.push(false, item{replay: pr})
}

// onReplayed takes a Msg payload flagged replayed, into a Message from
// the reader's slabs (alloc).
func (a *Agent) onReplayed(alloc *recvAlloc, payload []byte) error {
	m, err := alloc.received(payload)
	if err != nil {
		return err
	}
	m.Replayed = true
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.replays) == 0 {
		return errors.New("netcluster: from server: a replayed message with no replay asked")
	}
	pr := a.replays[0]
	if pr.l != nil && pr.l.abandoned.Load() {
		pr.discarded++ // its listener went live (holdLive)
		return nil
	}
	pr.msgs = append(pr.msgs, m)
	return nil
}

// onReplayEnd ends the oldest replay.
func (a *Agent) onReplayEnd(payload []byte) error {
	e, err := wire.ParseReplayEnd(payload)
	if err != nil {
		return fromServer(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.replays) == 0 || a.replays[0].id != e.ID {
		return fmt.Errorf("netcluster: from server: end of replay %d, which is not the oldest asked", e.ID)
	}
	pr := a.replays[0]
	a.replays = a.replays[1:]
	switch {
	case e.Err != "":
		a.finishReplayLocked(pr, replayResult{err: errors.New(e.Err)})
	case int(e.Count) != len(pr.msgs)+pr.discarded:
		a.finishReplayLocked(pr, replayResult{err: fmt.Errorf("from server: %d messages, the end says %d", len(pr.msgs), e.Count)})
	default:
		a.finishReplayLocked(pr, replayResult{msgs: pr.msgs})
	}
	return nil
}

// failReplaysLocked ends every replay in flight with err. Call with mu
// held.
func (a *Agent) failReplaysLocked(err error) {
	for _, pr := range a.replays {
		a.finishReplayLocked(pr, replayResult{err: err})
	}
	a.replays = nil
}
