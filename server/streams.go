package server

// Gaps after a crash (protocol version 4, docs/PROTOCOL.md section 14,
// "Gaps"). A message a sender kept unacknowledged is lost if the server
// and the sender die together: nobody is left to send it again. So that
// receivers are told, each agent of version 4 announces its stream on
// every connection (Stream); when a sender's connection ends while the
// server runs, its receivers get a StreamEnd after its last message, and
// stop watching it; and a receiver that connects again asks which of the
// streams it still watches are connected (Watch), the server answering
// once its restart grace is over with those that are not (Gone). All of
// it costs per connection and disconnection, nothing per message.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// maxWatched bounds the streams one connection may ask about: the Go
// agent remembers at most 4096 origins.
const maxWatched = 4096

// gapState is a connection's part in this: the stream it announced, and
// the Watch entries waiting for the end of the restart grace.
type gapState struct {
	// stream is 1<<32 | the stream id once announced, 0 before; read by
	// the readers of other connections answering their Watch.
	stream atomic.Uint64
	seq    uint64 // the reader's: the last number the agent announced

	mu      sync.Mutex
	watched int              // entries asked about on this connection
	pending []wire.StreamRef // waiting for the grace to end
	timer   *time.Timer      // answers pending when it fires
	armed   sync.WaitGroup   // the timer is set or its function runs
	stopped bool
}

// onStream notes the stream the agent announces. A connection has one.
func (c *conn) onStream(payload []byte) error {
	stream, seq, err := wire.ParseStream(payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	v := 1<<32 | uint64(stream)
	if old := c.gap.stream.Load(); old != 0 && old != v {
		return perr(wire.CodeProtocol, "stream: this connection announced stream %08x, now %08x", uint32(old), stream)
	}
	c.gap.stream.Store(v)
	c.gap.seq = max(c.gap.seq, seq)
	return nil
}

// endStream runs when c's reader has ended, before c leaves its channel.
// If the agent ended the connection (it closed it, or its process died),
// not the server (a slow consumer, a protocol error, a reconnection that
// replaced it, a reload, shutdown: after those the agent comes back with
// its stream), the agents that may have received its messages, those of
// version 4 in its channel and in the channels it propagates to, get a
// StreamEnd after the messages of c queued for them. It also stops the
// answers of c's own Watch.
func (c *conn) endStream() {
	c.gap.stop()
	v := c.gap.stream.Load()
	if v == 0 || c.version < wire.VersionGaps {
		return
	}
	if c.endedByServer() {
		return
	}
	frame := wire.AppendStreamEnd(nil, wire.StreamEnd{
		StreamRef: wire.StreamRef{Channel: c.ch.name, Agent: c.id, Stream: uint32(v)},
		Seq:       max(c.routed.Load(), c.gap.seq),
	})
	c.ch.sendStreamEnd(c, frame)
	for _, t := range c.ch.settings.Load().targets {
		t.sendStreamEnd(c, frame)
	}
}

// endedByServer reports whether the server ended c: it closed it with an
// Error (closing), a newer connection of its agent replaced it, or its
// channel is closing (a reload, shutdown). A connection whose writer
// closed it after a failed write was ended by the agent's side.
func (c *conn) endedByServer() bool {
	c.omu.Lock()
	closing := c.closing
	c.omu.Unlock()
	ch := c.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return closing || ch.closed || ch.ids[c.id] != c
}

// sendStreamEnd queues frame for the agents of ch of version 4 but src.
func (ch *channel) sendStreamEnd(src *conn, frame []byte) {
	for _, r := range ch.members() {
		if r != src && !r.legacy && r.version >= wire.VersionGaps {
			r.queueStreamEnd(frame)
		}
	}
}

// queueStreamEnd queues a StreamEnd like a control frame: past the
// outbox's bound, as it is small and must follow the messages before it,
// up to twice the bound; past that it is not sent and counted, and the
// agent goes on watching the stream (it may be told of a gap that is not
// one after a restart, never the other way round).
func (r *conn) queueStreamEnd(frame []byte) {
	lim := r.srv.limits.Load()
	r.omu.Lock()
	if r.closing || r.discarding {
		r.omu.Unlock()
		return
	}
	if r.queuedLocked() > 2*lim.outBuffer {
		r.omu.Unlock()
		r.ch.stats.streamEndsDropped.Add(1)
		return
	}
	r.obuf = append(r.obuf, frame...)
	r.omu.Unlock()
	r.ch.stats.streamEnds.Add(1)
	r.signal()
}

// onWatch answers a Watch: at once past the restart grace, else when it
// ends, with a Gone listing the streams asked about that are not
// connected.
func (c *conn) onWatch(payload []byte) error {
	g := &c.gap
	g.mu.Lock()
	defer g.mu.Unlock()
	refs, err := wire.ParseRefs(nil, payload, maxWatched-g.watched)
	if err != nil {
		if errors.Is(err, wire.ErrTooMany) {
			return perr(wire.CodeForbidden, "watch: more than %d streams asked about on one connection", maxWatched)
		}
		return perr(wire.CodeMalformed, "%v", err)
	}
	g.watched += len(refs)
	if g.timer == nil {
		if d := c.srv.graceLeft(time.Now()); d <= 0 {
			c.sendControl(c.srv.appendGone(nil, refs))
			return nil
		}
	}
	// Answers go out in the order asked: after those pending.
	g.pending = append(g.pending, refs...)
	if g.timer == nil && !g.stopped {
		g.armed.Add(1)
		g.timer = time.AfterFunc(c.srv.graceLeft(time.Now()), c.answerWatch)
	}
	return nil
}

// answerWatch answers the pending Watch entries once the grace is over.
func (c *conn) answerWatch() {
	g := &c.gap
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
	refs := g.pending
	g.pending, g.timer = nil, nil
	c.sendControl(c.srv.appendGone(nil, refs))
	g.mu.Unlock()
	g.armed.Done()
}

// stop cancels the pending answers and waits for one being sent.
func (g *gapState) stop() {
	g.mu.Lock()
	g.stopped = true
	if g.timer != nil && g.timer.Stop() {
		g.timer = nil
		g.armed.Done()
	}
	g.pending = nil
	g.mu.Unlock()
	g.armed.Wait()
}

// appendGone appends a Gone frame listing the refs whose stream is not
// connected: no agent of that channel and id is, or it announced another
// stream. An agent of version 3, which announces none, is taken to be
// the one watched.
func (s *Server) appendGone(dst []byte, refs []wire.StreamRef) []byte {
	m := s.byName.Load()
	gone := refs[:0]
	for _, r := range refs {
		var c *conn
		if m != nil {
			if ch := (*m)[r.Channel]; ch != nil {
				c = ch.agent(r.Agent)
			}
		}
		if c != nil {
			if v := c.gap.stream.Load(); v == 1<<32|uint64(r.Stream) || v == 0 && c.version == wire.VersionAcks {
				continue
			}
		}
		gone = append(gone, r)
	}
	return wire.AppendRefs(dst, wire.TypeGone, gone)
}

// graceLeft is how long the restart grace still runs: until the server is
// resumeGrace old and no agent has joined for resumeQuiet, or it is
// resumeMax old (acks.go).
func (s *Server) graceLeft(now time.Time) time.Duration {
	up := now.Sub(s.started)
	if up >= resumeMax {
		return 0
	}
	d := resumeGrace - up
	if q := resumeQuiet - now.Sub(time.Unix(0, s.lastJoin.Load())); q > d {
		d = q
	}
	return max(d, 0)
}
