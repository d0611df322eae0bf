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
// it costs per connection and disconnection; per message, one check of
// its stream against the one announced.

import (
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
	acked  uint64 // the reader's: the last it announced acknowledged

	// watch is made by the connection's first Watch (a receiver that
	// connected again), set and read by the reader, and by the answers'
	// timer it arms: most connections never ask, and do not hold it.
	watch *watchState
}

// watchState is a connection's Watch entries (streams_watch.go).
type watchState struct {
	mu      sync.Mutex
	watched int            // entries asked about on this connection
	pending []watchRef     // waiting for the grace to end (streams_watch.go)
	timer   *time.Timer    // answers pending when it fires
	armed   sync.WaitGroup // the timer is set or its function runs
	stopped bool
}

// onStream notes the stream the agent announces. A connection has one,
// announced before its first SeqMsg.
func (c *conn) onStream(payload []byte) error {
	stream, seq, acked, err := wire.ParseStream(payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	v := 1<<32 | uint64(stream)
	if old := c.gap.stream.Load(); old != 0 && old != v {
		return perr(wire.CodeProtocol, "stream: this connection announced stream %08x, now %08x", uint32(old), stream)
	}
	if c.snd != nil && c.snd.seqSeen {
		return perr(wire.CodeProtocol, "stream: announced after the connection's first seqmsg")
	}
	c.gap.stream.Store(v)
	c.gap.seq = max(c.gap.seq, seq)
	c.gap.acked = max(c.gap.acked, acked)
	return nil
}

// streamEnd is the StreamEnd of c's stream v: the last number announced
// or sent; or, if c ended before it sent again all the agent had
// numbered before it connected, the last number it sent or had
// acknowledged before, with the number announced above it (a gap).
func (c *conn) streamEnd(v uint64) wire.StreamEnd {
	e := wire.StreamEnd{StreamRef: wire.StreamRef{Channel: c.ch.name, Agent: c.id, Stream: uint32(v)}}
	routed := c.routed.Load()
	e.Seq = max(routed, c.gap.seq)
	if done := max(routed, c.gap.acked); done < c.gap.seq {
		e.Seq, e.Announced = done, c.gap.seq
	}
	return e
}

// endStream runs when c's reader has ended, before c leaves its channel.
// If the agent ended the connection (it closed it, or its process died),
// not the server (a slow consumer, a protocol error, a reconnection that
// replaced it, a reload, shutdown: after those the agent comes back with
// its stream), the agents that may have received its messages, those of
// version 4 in its channel and in the channels it propagates to, get a
// StreamEnd after the messages of c queued for them, within the budget
// of c's uid (streams_fanout.go). A stream that never numbered a message
// has no receiver watching it: no StreamEnd. It also stops the answers of
// c's own Watch.
func (c *conn) endStream() {
	c.gap.stop(c.srv)
	v := c.gap.stream.Load()
	if v == 0 || c.version < wire.VersionGaps {
		return
	}
	if max(c.routed.Load(), c.gap.seq) == 0 || c.endedByServer() {
		return
	}
	frame := wire.AppendStreamEnd(nil, c.streamEnd(v))
	rs := c.ch.streamEndRecipients(c, nil)
	for _, t := range c.ch.settings.Load().targets {
		rs = t.streamEndRecipients(c, rs)
	}
	k := c.srv.fanout.take(c.uid, len(rs), time.Now())
	for _, r := range rs[:k] {
		r.queueStreamEnd(frame)
	}
	for _, r := range rs[k:] {
		r.ch.stats.streamEndsDropped.Add(1)
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

// streamEndRecipients appends the agents of ch of version 4 but src.
func (ch *channel) streamEndRecipients(src *conn, dst []*conn) []*conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for r := range ch.conns {
		if r != src && !r.legacy && r.version >= wire.VersionGaps {
			dst = append(dst, r)
		}
	}
	return dst
}

// queueStreamEnd queues a StreamEnd past the outbox's bound, as it is
// small and must follow the messages before it, up to streamEndLimit,
// which leaves room for the control frames an agent is disconnected for
// if they pile up past twice the bound; past it the StreamEnd is not sent
// and is counted, and the agent goes on watching the stream (it may be
// told of a gap that is not one after a restart, never the other way
// round).
func (r *conn) queueStreamEnd(frame []byte) {
	lim := r.srv.limits.Load()
	r.omu.Lock()
	if r.closing || r.discarding {
		r.omu.Unlock()
		return
	}
	if r.queuedLocked()+len(frame) > streamEndLimit(lim.outBuffer) {
		r.omu.Unlock()
		r.ch.stats.streamEndsDropped.Add(1)
		return
	}
	r.obuf = append(r.obuf, frame...)
	r.omu.Unlock()
	r.ch.stats.streamEnds.Add(1)
	r.signal()
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
