package netcluster

// Gaps after a crash (protocol version 4, docs/PROTOCOL.md section 14,
// "Gaps"). A receiver watches each origin it received numbered messages
// from until the server says that origin's connection ended (StreamEnd:
// every message of it came before). After a reconnection it asks the
// server which of the origins it watches are connected (Watch); each the
// server says is gone (Gone) may have emitted messages this agent will
// never get, and the error handler is told with a *GapError.

import (
	"fmt"

	"github.com/netcluster/netcluster/internal/wire"
)

// GapError reports a sender whose messages this agent may have lost: it
// received messages from Agent of Channel (its Stream) up to number
// LastSeq, then that stream ended without the server being able to say
// that nothing came after: at a reconnection of this agent (whatever its
// cause) the server said the stream was not connected (it had not come
// back); or a message of a new stream of that agent id came (the sender
// was restarted); or the sender's connection ended before it had sent
// again what it had kept from before. That happens most often when the
// server and the sender died together: what the server held for this
// agent then, and what the sender kept unacknowledged, is gone. It
// reaches the error handler (see WithErrorHandler) in stream order,
// after the last message of the sender this agent got, once per sender's
// stream. docs/PROTOCOL.md, section 14, says exactly when it is raised
// and when not.
type GapError struct {
	Channel string // the sender's channel
	Agent   string // the sender's agent id
	Stream  uint32 // the sender's stream (drawn at random when it started)
	LastSeq uint64 // the number of the last of its messages this agent received
}

func (e *GapError) Error() string {
	return fmt.Sprintf("netcluster: agent %q of channel %q (stream %08x) ended without everything it emitted reaching this agent: messages it emitted after number %d may be lost",
		e.Agent, e.Channel, e.Stream, e.LastSeq)
}

// onGap acts on a StreamEnd or Gone frame. It runs on the reader.
func (a *Agent) onGap(f wire.Frame) error {
	if f.Type == wire.TypeStreamEnd {
		e, err := wire.ParseStreamEnd(f.Payload)
		if err != nil {
			return err
		}
		if gap := a.seen.end(e); gap != nil {
			a.q.push(false, item{err: gap})
		}
		return nil
	}
	refs, err := wire.ParseRefs(nil, f.Payload, maxOrigins)
	if err != nil {
		return err
	}
	for _, r := range refs {
		if seq, ok := a.seen.gone(r); ok {
			a.q.push(false, item{err: &GapError{Channel: r.Channel, Agent: r.Agent, Stream: r.Stream, LastSeq: seq}})
		}
	}
	return nil
}

// find returns the origin of channel and agent, nil if not remembered.
func (o *origins) find(channel, agent string) *origin {
	return o.byChan[channel][agent]
}

// end notes that the connection of e's stream ended after number e.Seq,
// every message of it before: it is no longer watched. A StreamEnd of
// numbers below what was received is of an earlier connection of the
// stream, now past it: ignored. If the connection ended before sending
// again what the sender had numbered before it (e.Announced above e.Seq)
// and this agent had not received those, end returns the notice.
func (o *origins) end(e wire.StreamEnd) *GapError {
	g := o.find(e.Channel, e.Agent)
	if g == nil || g.stream != e.Stream || g.seq > max(e.Seq, e.Announced) {
		return nil
	}
	g.ended = true
	if e.Announced > e.Seq && g.seq < e.Announced && g.seq != 0 {
		return &GapError{Channel: g.channel, Agent: g.agent, Stream: g.stream, LastSeq: g.seq}
	}
	return nil
}

// gone notes that r is not connected: if r is watched, it is no longer,
// and gone returns the last number received of it.
func (o *origins) gone(r wire.StreamRef) (last uint64, ok bool) {
	g := o.find(r.Channel, r.Agent)
	if g == nil || g.stream != r.Stream || g.ended || g.seq == 0 {
		return 0, false
	}
	g.ended = true
	return g.seq, true
}

// appendWatch appends Watch frames listing the origins watched, none if
// there are none, each frame at most maxFrame long.
func (o *origins) appendWatch(dst []byte, maxFrame int) []byte {
	var refs []wire.StreamRef
	size := 0
	flush := func() {
		if len(refs) > 0 {
			dst = wire.AppendRefs(dst, wire.TypeWatch, refs)
			refs, size = refs[:0], 0
		}
	}
	for _, ags := range o.byChan {
		for _, g := range ags {
			if g.ended || g.seq == 0 {
				continue
			}
			r := wire.StreamRef{Channel: g.channel, Agent: g.agent, Stream: g.stream}
			if n := wire.RefSize(r); 1+size+n > maxFrame {
				flush()
			}
			refs = append(refs, r)
			size += wire.RefSize(r)
		}
	}
	flush()
	return dst
}
