package netcluster

// Acknowledged messages (protocol version 3, docs/PROTOCOL.md section
// 14). On a connection of that version the agent sends its messages as
// SeqMsg frames numbered in its stream, keeps every batch it wrote that
// holds a number the server has not acknowledged, and on the next
// connection sends those messages again, before what is still queued.
// Receivers drop what they already had (origins).

import (
	"github.com/netcluster/netcluster/internal/wire"
)

// maxFree is how many emptied batch buffers the agent keeps for reuse.
const maxFree = 4

// sentBatch is a written batch kept until its last number is
// acknowledged.
type sentBatch struct {
	buf  []byte
	last uint64
}

// onAck releases the batches the server has acknowledged, and wakes an
// Emit or Close waiting for room.
func (a *Agent) onAck(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq <= a.acked || seq > a.seq {
		return
	}
	a.acked = seq
	i := 0
	for i < len(a.sent) && a.sent[i].last <= seq {
		a.sentBytes -= len(a.sent[i].buf)
		a.recycle(a.sent[i].buf)
		i++
	}
	if i > 0 {
		n := copy(a.sent, a.sent[i:])
		clear(a.sent[n:])
		a.sent = a.sent[:n]
	}
	a.changed.broadcast()
}

// recycle keeps buf for a later batch: a chunk in the pool of chunks
// (sendbuf.go), another buffer among the free ones. Call with mu held.
func (a *Agent) recycle(buf []byte) {
	if cap(buf) == outChunk {
		if len(a.chunks) < a.maxChunks() {
			a.chunks = append(a.chunks, buf[:0])
		}
		return
	}
	if len(a.free) < maxFree {
		a.free = append(a.free, buf[:0])
	}
}

// resendLocked returns dst with the messages to send on a new connection
// appended, oldest first: those of the kept batches that are not
// acknowledged, then those of out (whose other frames attach handles).
// For a server that does not acknowledge (acks false) they go as Msg
// frames, and are given up as acknowledged. Call with mu held.
func (a *Agent) resendLocked(dst, out []byte, calls, acks bool) []byte {
	keep := func(f wire.Frame) {
		if f.Type != wire.TypeSeqMsg {
			if f.Type == wire.TypeMsg || calls && (f.Type == wire.TypeCall || f.Type == wire.TypeAnswer) {
				dst = append(dst, f.Raw...)
			}
			return
		}
		if _, seq, ok := wire.SeqOf(f.Payload); !ok || seq <= a.acked {
			return
		}
		if acks {
			dst = append(dst, f.Raw...)
		} else {
			dst = wire.AppendMsgOfSeq(dst, f.Payload)
		}
	}
	for _, b := range a.sent {
		for f := range wire.Frames(b.buf) {
			if f.Type == wire.TypeSeqMsg {
				keep(f)
			}
		}
		a.recycle(b.buf)
	}
	clear(a.sent)
	a.sent, a.sentBytes = a.sent[:0], 0
	for f := range wire.Frames(out) {
		keep(f)
	}
	a.outLast = 0
	if acks && a.seq > a.acked {
		a.outLast = a.seq
	}
	if !acks {
		a.acked = a.seq
	}
	return dst
}

// outResendable reports whether queued or out holds frames that a reconnection
// sends again (resendLocked): messages not acknowledged, calls and
// answers. The others (Stream, Listen, Ping, Pong...) belong to the
// connection they were queued for. Call with mu held.
func (a *Agent) outResendable() bool {
	for _, b := range a.queued {
		if a.resendable(b.buf) {
			return true
		}
	}
	return a.resendable(a.out)
}

func (a *Agent) resendable(buf []byte) bool {
	for f := range wire.Frames(buf) {
		switch f.Type {
		case wire.TypeMsg, wire.TypeCall, wire.TypeAnswer:
			return true
		case wire.TypeSeqMsg:
			if _, seq, ok := wire.SeqOf(f.Payload); ok && seq > a.acked {
				return true
			}
		}
	}
	return false
}

// lastSeq returns the number of buf's last SeqMsg, 0 if it has none.
func lastSeq(buf []byte) uint64 {
	var last uint64
	for f := range wire.Frames(buf) {
		if f.Type == wire.TypeSeqMsg {
			if _, seq, ok := wire.SeqOf(f.Payload); ok {
				last = seq
			}
		}
	}
	return last
}

// maxOrigins bounds the origins a receiving agent remembers; past it the
// one heard from longest ago is forgotten.
const maxOrigins = 4096

// origins remembers, per origin (channel and agent), the stream and the
// last number received, to drop what a sender sent again after a
// reconnection and this agent already had. A sender's messages reach a
// receiver in order, so the last number is enough. It belongs to the
// reader goroutine of the agent's current connection (one at a time).
type origins struct {
	byChan map[string]map[string]*origin
	n      int
	clock  uint64
	last   *origin // the origin of the previous message, looked up first
}

type origin struct {
	channel, agent string
	stream         uint32
	seq            uint64
	used           uint64 // clock when last heard
	ended          bool   // told its connection ended (StreamEnd, Gone): not watched (gaps.go)
}

// fresh reports whether message seq of stream from channel/agent is new,
// and notes it. A message of another stream than the one watched of that
// origin (the agent restarted with the same id) replaces it; gap is then
// the notice for the old stream, to be handled before the message: its
// end was never told (no StreamEnd, no Gone), so what it emitted after
// the last number received may be lost (a sender that died with the
// server and was restarted within the grace, say). See gaps.go.
func (o *origins) fresh(channel, agent []byte, stream uint32, seq uint64) (ok bool, gap *GapError) {
	o.clock++
	g := o.last
	if g == nil || g.agent != string(agent) || g.channel != string(channel) {
		g = o.lookup(channel, agent)
	}
	g.used = o.clock
	if g.stream != stream || g.seq == 0 {
		if g.seq != 0 && !g.ended {
			gap = &GapError{Channel: g.channel, Agent: g.agent, Stream: g.stream, LastSeq: g.seq}
		}
		g.stream, g.seq, g.ended = stream, seq, false // a new sender, or a restarted one
		return true, gap
	}
	if seq <= g.seq {
		return false, nil
	}
	g.seq, g.ended = seq, false
	return true, nil
}

func (o *origins) lookup(channel, agent []byte) *origin {
	if o.byChan == nil {
		o.byChan = make(map[string]map[string]*origin)
	}
	ags := o.byChan[string(channel)]
	g := ags[string(agent)]
	if g == nil {
		if o.n >= maxOrigins {
			o.forgetOldest()
		}
		if ags == nil {
			ags = make(map[string]*origin)
			o.byChan[string(channel)] = ags
		}
		g = &origin{channel: string(channel), agent: string(agent)}
		ags[g.agent] = g
		o.n++
	}
	o.last = g
	return g
}

func (o *origins) forgetOldest() {
	var oc, oa string
	var oldest *origin
	for ch, ags := range o.byChan {
		for ag, g := range ags {
			if oldest == nil || g.used < oldest.used {
				oldest, oc, oa = g, ch, ag
			}
		}
	}
	if oldest == nil {
		return
	}
	delete(o.byChan[oc], oa)
	if len(o.byChan[oc]) == 0 {
		delete(o.byChan, oc)
	}
	if o.last == oldest {
		o.last = nil
	}
	o.n--
}
