package server

// Watch and Gone (streams.go): a receiver connected again asks which of
// the streams it watches are connected. During the restart grace the
// entries are held until it ends; they are checked (each names an agent
// id an agent could have), held compactly (the channel as the server's
// own, not a copy of its name), those of a channel this server does not
// serve answered at once, and the entries held server-wide bounded.

import (
	"errors"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// maxPendingWatches bounds the Watch entries all connections may have
// held for the end of the restart grace; past it a Watch is answered at
// once (counted watches_early): a sender not back yet is then reported
// gone, a false alarm at worst.
const maxPendingWatches = 1 << 16

// watchRef is a Watch entry held for the end of the grace.
type watchRef struct {
	ch     *channel
	agent  string
	stream uint32
}

// onWatch answers a Watch: at once past the restart grace, else when it
// ends, with a Gone listing the streams asked about that are not
// connected.
func (c *conn) onWatch(payload []byte) error {
	if c.gap.watch == nil {
		c.gap.watch = new(watchState)
	}
	g := c.gap.watch
	g.mu.Lock()
	defer g.mu.Unlock()
	refs, err := wire.ParseRefs(nil, payload, maxWatched-g.watched)
	if err != nil {
		if errors.Is(err, wire.ErrTooMany) {
			return perr(wire.CodeForbidden, "watch: more than %d streams asked about on one connection", maxWatched)
		}
		return perr(wire.CodeMalformed, "%v", err)
	}
	for _, r := range refs {
		if !validAgentID(r.Agent) {
			return perr(wire.CodeMalformed, "watch: invalid agent id %.64q of channel %.64q: want 1 to 64 letters, digits, '.', '_' or '-'", r.Agent, r.Channel)
		}
	}
	g.watched += len(refs)
	s := c.srv
	if g.timer == nil && s.graceLeft(time.Now()) <= 0 {
		c.sendControl(s.appendGone(nil, refs))
		return nil
	}
	// Within the grace: a channel this server does not serve has no agent
	// to come back; the others wait for the grace to end.
	m := s.byName.Load()
	held := make([]watchRef, 0, len(refs))
	unknown := refs[:0]
	for _, r := range refs {
		var ch *channel
		if m != nil {
			ch = (*m)[r.Channel]
		}
		if ch == nil {
			unknown = append(unknown, r)
			continue
		}
		held = append(held, watchRef{ch: ch, agent: r.Agent, stream: r.Stream})
	}
	if len(unknown) > 0 {
		c.sendControl(wire.AppendRefs(nil, wire.TypeGone, unknown))
	}
	if len(held) == 0 {
		return nil
	}
	if s.watchPending.Add(int64(len(held))) > maxPendingWatches {
		s.watchPending.Add(-int64(len(held)))
		c.ch.stats.watchesEarly.Add(uint64(len(held)))
		c.sendControl(s.appendGoneHeld(nil, held))
		return nil
	}
	// Answers go out in the order asked: after those pending.
	g.pending = append(g.pending, held...)
	if g.timer == nil && !g.stopped {
		g.armed.Add(1)
		g.timer = time.AfterFunc(s.graceLeft(time.Now()), c.answerWatch)
	}
	return nil
}

// answerWatch answers the pending Watch entries once the grace is over.
func (c *conn) answerWatch() {
	g := c.gap.watch // made before the timer that calls this
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		g.armed.Done()
		return
	}
	if d := c.srv.graceLeft(time.Now()); d > 0 {
		g.timer.Reset(d) // an agent joined meanwhile: wait on
		g.mu.Unlock()
		return
	}
	held := g.pending
	g.pending, g.timer = nil, nil
	c.srv.watchPending.Add(-int64(len(held)))
	c.sendControl(c.srv.appendGoneHeld(nil, held))
	g.mu.Unlock()
	g.armed.Done()
}

// stop cancels the pending answers and waits for one being sent. Only
// the reader calls it, after its last frame: no Watch follows.
func (gs *gapState) stop(s *Server) {
	g := gs.watch
	if g == nil {
		return // never asked
	}
	g.mu.Lock()
	g.stopped = true
	if g.timer != nil && g.timer.Stop() {
		g.timer = nil
		g.armed.Done()
	}
	s.watchPending.Add(-int64(len(g.pending)))
	g.pending = nil
	g.mu.Unlock()
	g.armed.Wait()
}

// appendGone appends a Gone frame listing the refs whose stream is not
// connected.
func (s *Server) appendGone(dst []byte, refs []wire.StreamRef) []byte {
	m := s.byName.Load()
	gone := refs[:0]
	for _, r := range refs {
		var ch *channel
		if m != nil {
			ch = (*m)[r.Channel]
		}
		if !connected(ch, r.Agent, r.Stream) {
			gone = append(gone, r)
		}
	}
	return wire.AppendRefs(dst, wire.TypeGone, gone)
}

// appendGoneHeld is appendGone of entries held: a channel that a reload
// has since removed or replaced is looked up by its name.
func (s *Server) appendGoneHeld(dst []byte, held []watchRef) []byte {
	m := s.byName.Load()
	gone := make([]wire.StreamRef, 0, len(held))
	for _, h := range held {
		var ch *channel
		if m != nil {
			ch = (*m)[h.ch.name]
		}
		if !connected(ch, h.agent, h.stream) {
			gone = append(gone, wire.StreamRef{Channel: h.ch.name, Agent: h.agent, Stream: h.stream})
		}
	}
	return wire.AppendRefs(dst, wire.TypeGone, gone)
}

// connected reports whether stream of agent is connected to ch (nil: no
// such channel): an agent of that id is, and announced that stream; an
// agent of version 3, which announces none, is taken to be the one
// watched.
func connected(ch *channel, agent string, stream uint32) bool {
	if ch == nil {
		return false
	}
	c := ch.agent(agent)
	if c == nil {
		return false
	}
	v := c.gap.stream.Load()
	return v == 1<<32|uint64(stream) || v == 0 && c.version == wire.VersionAcks
}
