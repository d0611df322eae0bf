package backbone

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"
	"unsafe"

	"github.com/netcluster/netcluster/internal/wire"
)

// maxPeerKeys bounds the sequence keys a receiver remembers per
// publishing server.
const maxPeerKeys = 1 << 16

// receiver turns envelopes into deliveries for one stream of NATS
// messages (the plain subscriptions, or one durable consumer): it drops
// duplicates, counts gaps, and reassembles pieces. It is used by one
// goroutine at a time.
type receiver struct {
	b     *Backbone
	peers map[NodeID]*peerState
	parts assembly // large messages in pieces

	// holdGaps (durable consumers) asks for a message after a gap again
	// (handle returns retry) for up to gapWait, since JetStream redelivers
	// what a failover cut off; past it, the gap is counted lost.
	holdGaps bool
	gapWait  time.Duration
	retry    bool // set by accept: the message is to be redelivered

	// listening, if set (durable consumers), says whether a local agent
	// listens now; asked when a delivery reached no one at its end. If
	// none does, what reached no one is not delivered: the receiver's
	// sequence is set back to it and handle reports unheard.
	listening func() bool
	unheard   bool

	warm byte // what touch read, kept so that its loads are not elided
}

// touch reads one byte of each 64-byte cache line of p and returns their
// sum. The loads do not depend on one another, so the CPU overlaps them
// and streams p into its cache: walking a batch frame by frame, where each
// frame's length says where the next one is, waits for one line at a time
// otherwise, and a batch arrives in memory the NATS client's goroutine
// wrote, often on the other core (in S9 the walk's first reads, its
// length prefixes, were a fifth of the receiving server's CPU).
func touch(p []byte) (sum byte) {
	for i := 0; i < len(p); i += 64 {
		sum += p[i]
	}
	return sum
}

// peerState is what a receiver knows of one publishing server.
type peerState struct {
	epoch uint32
	next  map[string]uint64    // sequence key → next expected seq
	gaps  map[string]time.Time // sequence key → when a gap was first seen (holdGaps)
}

func newReceiver(b *Backbone) *receiver {
	return &receiver{b: b, peers: make(map[NodeID]*peerState), parts: newAssembly(b)}
}

// handle takes one envelope that arrived under sequence key key and
// delivers the frame it completes, if any. It returns false for a
// malformed envelope. With holdGaps, retry reports that the envelope came
// after a gap and was not delivered: it should be redelivered later.
// With listening, unheard reports that its frames (a batch's from some
// frame on) reached no local agent, none listening any more: it should be
// redelivered later, and only those frames will be delivered then.
func (r *receiver) handle(subj, key string, data []byte) (ok, retry, unheard bool) {
	r.retry, r.unheard = false, false
	ok = r.handle1(subj, key, data)
	return ok, r.retry, r.unheard
}

func (r *receiver) handle1(subj, key string, data []byte) bool {
	e, err := parseEnvelope(data)
	if err != nil {
		r.b.st.malformed.Add(1)
		r.b.warn.soon(&r.b.st)
		return false
	}
	if e.node == r.b.cfg.NodeID || e.kind == kindRequeue {
		// Our own publication (durable streams hold them), or a message
		// published again for a queue group only (qreceive.go).
		return true
	}
	ps := r.peers[e.node]
	if ps == nil || ps.epoch != e.epoch {
		if r.parts.parts[e.node] != nil {
			r.parts.drop(e.node)
		}
		ps = &peerState{epoch: e.epoch, next: make(map[string]uint64), gaps: make(map[string]time.Time)}
		r.peers[e.node] = ps
	}
	switch e.kind {
	case kindMsg:
		_, seen := ps.next[key]
		if !r.accept(ps, key, e.seq) {
			return true
		}
		if r.deliver(e.node, subj, e.body) > 0 {
			r.rewind(ps, key, e.seq, seen)
		}
	case kindChunk:
		r.chunk(ps, subj, key, &e)
	case kindBatch:
		r.batch(ps, subj, key, &e)
	}
	return true
}

// batch delivers the frames of a batch envelope, all or none: a batch is
// only ever sent again whole. Consecutive Msg frames go to the server in
// one call: they name one channel, checked against the subject once. A
// frame whose payload from its channel through its event is the first's
// of the call byte for byte is checked by that one comparison, and a call
// whose frames all are is a Stream.
//
// A batch a durable consumer delivered in part (handle's unheard) comes
// again whole: the frames delivered then are skipped.
func (r *receiver) batch(ps *peerState, subj, key string, e *envelope) {
	want, seen := ps.next[key]
	done := 0 // frames delivered (or found malformed)
	if r.listening != nil && seen && e.seq < want && want < e.seq+uint64(e.count) {
		done = int(want - e.seq)
	} else if !r.accept(ps, key, e.seq) {
		return
	}
	ps.next[key] = e.seq + uint64(e.count)
	r.warm += touch(e.body)
	rest := e.body
	for range done {
		n, ok := wire.FrameLen(rest)
		if !ok || n > len(rest) {
			r.b.st.malformed.Add(1)
			r.b.warn.soon(&r.b.st)
			return
		}
		rest = rest[n:]
	}
	// cut sets the sequence back to the frames from the k-th of the last
	// delivery on, which reached no one: they come again.
	cut := func(k, unheard int) {
		r.rewind(ps, key, e.seq+uint64(done+k-unheard), seen || done+k-unheard > 0)
	}
	var ru batchRun // rest[:ru.end] holds ru.k frames checked, not yet delivered
	for range int(e.count) - done {
		n, ok := wire.FrameLen(rest[ru.end:])
		if !ok || n > len(rest)-ru.end {
			r.b.st.malformed.Add(1)
			r.b.warn.soon(&r.b.st)
			rest = rest[:ru.end]
			break
		}
		f := rest[ru.end : ru.end+n]
		if ru.extends(f) {
			ru.add(n)
			continue
		}
		if u := r.deliverRun(e.node, rest[:ru.end], ru.k, ru.stream()); u > 0 {
			cut(ru.k, u)
			return
		}
		done += ru.k
		rest, ru = rest[ru.end:], batchRun{}
		if !r.valid(subj, f) || f[wire.HeaderLen-1] != wire.TypeMsg {
			if u := r.deliver(e.node, subj, f); u > 0 { // alone, checked again
				cut(1, u)
				return
			}
			done++
			rest = rest[n:]
			continue
		}
		ru.start(f)
	}
	if u := r.deliverRun(e.node, rest[:ru.end], ru.k, ru.stream()); u > 0 {
		cut(ru.k, u)
		return
	}
	if len(rest) > ru.end {
		r.b.st.malformed.Add(1)
	}
}

// batchRun is the run of Msg frames of one channel batch is building.
type batchRun struct {
	end, k  int
	biggest int
	channel []byte // the channel all name; nil before the first frame
	origin  []byte // the first frame's payload from its channel through its event, nil if cut short
	same    bool   // origin is not nil and every frame's payload holds it where the first's does
}

// start makes the checked Msg frame f the first of the run.
func (ru *batchRun) start(f []byte) {
	*ru = batchRun{end: len(f), k: 1, biggest: len(f), channel: channelOf(f), origin: originOf(f)}
	ru.same = ru.origin != nil
}

// extends reports whether f, a frame of whose bytes the batch holds all,
// is a Msg frame of the run's channel.
func (ru *batchRun) extends(f []byte) bool {
	if ru.channel == nil || len(f) < wire.HeaderLen || f[wire.HeaderLen-1] != wire.TypeMsg {
		return false
	}
	const at = wire.HeaderLen + 1 // after the flags
	if ru.same && len(f) >= at+len(ru.origin) && string(f[at:at+len(ru.origin)]) == string(ru.origin) {
		return true
	}
	if bytes.Equal(channelOf(f), ru.channel) {
		ru.same = false
		return true
	}
	return false
}

// add counts a frame of n bytes that extends the run.
func (ru *batchRun) add(n int) {
	ru.end += n
	ru.k++
	ru.biggest = max(ru.biggest, n)
}

// stream is what the run tells the server of its frames.
func (ru *batchRun) stream() Stream {
	if !ru.same {
		return Stream{}
	}
	return Stream{Frames: ru.k, Biggest: ru.biggest}
}

// originOf returns the payload of the Msg frame f from its channel through
// its event (each after its length), nil if f is cut short before its
// event's end.
func originOf(f []byte) []byte {
	const from = wire.HeaderLen + 1 // after the flags
	at := from
	for range 3 { // channel, agent, node: a byte of length each
		if len(f) <= at {
			return nil
		}
		at += 1 + int(f[at])
	}
	if len(f) < at+2 {
		return nil
	}
	at += 2 + int(binary.BigEndian.Uint16(f[at:]))
	if len(f) < at {
		return nil
	}
	return f[from:at]
}

// accept checks seq against what ps expects under key: a duplicate is
// dropped, a gap counted as lost.
func (r *receiver) accept(ps *peerState, key string, seq uint64) bool {
	want, seen := ps.next[key]
	switch {
	case seen && seq < want:
		r.b.st.duplicates.Add(1)
		return false
	case seen && seq > want && r.holdGaps:
		since, ok := ps.gaps[key]
		if !ok {
			since = time.Now()
			ps.gaps[key] = since
		}
		if time.Since(since) < r.gapWait {
			r.retry = true
			return false
		}
		fallthrough
	case seen && seq > want:
		r.b.st.lost.Add(seq - want)
		r.b.warn.soon(&r.b.st)
	}
	delete(ps.gaps, key)
	if !seen && len(ps.next) >= maxPeerKeys {
		clear(ps.next)
	}
	ps.next[key] = seq + 1
	return true
}

// chunk adds a piece to the message its publisher is sending in pieces.
func (r *receiver) chunk(ps *peerState, subj, key string, e *envelope) {
	p := r.parts.parts[e.node]
	if p != nil && (p.key != key || p.seq != e.seq) {
		// Pieces of one message come back to back: the other is lost.
		r.parts.drop(e.node)
		p = nil
	}
	if p == nil {
		if e.offset != 0 {
			// The head of this message never came; count it once.
			if want, seen := ps.next[key]; !seen || e.seq >= want {
				r.b.st.lost.Add(1)
				ps.next[key] = e.seq + 1
			}
			return
		}
		if !r.accept(ps, key, e.seq) {
			return
		}
		if p = r.parts.start(e.node, e.epoch, e.seq, key, e.total); p == nil {
			return
		}
	}
	if r.parts.add(e.node, p, e) && r.deliver(e.node, subj, p.buf) > 0 {
		// Unheard: the message waits for its last piece again (its
		// sequence number was taken with its first), for the reassembly
		// limit from now and from the consumer's next start (resume).
		r.unheard = true
		p.buf = p.buf[:len(p.buf)-len(e.body)]
		p.back, p.since = true, time.Now()
		r.parts.parts[e.node] = p
		r.parts.reserve(cap(p.buf))
	}
}

// rewind sets what ps expects under key back to seq, where what reached
// no one (deliverRun's unheard) starts, or forgets key if nothing was
// seen under it before and nothing of this envelope was delivered: the
// frames from seq on come again (handle's unheard).
func (r *receiver) rewind(ps *peerState, key string, seq uint64, seen bool) {
	r.unheard = true
	if seen {
		ps.next[key] = seq
	} else {
		delete(ps.next, key)
	}
}

// maxReassembled is the largest frame a receiver reassembles: a frame of
// MaxMessage bytes grows by the node id its publisher wrote in
// (appendFrame).
func (b *Backbone) maxReassembled() int {
	return b.cfg.MaxMessage + len(b.nodeHex)
}

// deliver hands a frame to the server after checking it (valid), and
// returns deliverRun's unheard.
func (r *receiver) deliver(node NodeID, subj string, frame []byte) (unheard int) {
	if !r.valid(subj, frame) {
		r.b.st.malformed.Add(1)
		r.b.warn.soon(&r.b.st)
		return 0
	}
	return r.deliverRun(node, frame, 1, Stream{})
}

// valid reports whether frame is one Msg or Call frame of the channel subj
// names, or one Answer frame (an answer goes to its requester's server,
// which checks it is named in it).
func (r *receiver) valid(subj string, frame []byte) bool {
	n, ok := wire.FrameLen(frame)
	return ok && n == len(frame) && len(frame) >= wire.HeaderLen &&
		(frame[wire.HeaderLen-1] == wire.TypeAnswer || r.b.subj.sameChannel(subj, channelOf(frame)))
}

// deliverRun hands n checked frames, back to back, to the server. With
// listening, it returns how many of them, at the end, reached no local
// agent while none listens any more (uncounted: they come again); else 0.
func (r *receiver) deliverRun(node NodeID, frames []byte, n int, s Stream) (unheard int) {
	if n == 0 {
		return 0
	}
	r.b.st.msgsIn.Add(uint64(n))
	r.b.st.bytesIn.Add(uint64(len(frames)))
	heard := r.b.deliver(node, frames, s)
	if heard >= len(frames) || r.listening == nil || r.listening() {
		return 0
	}
	for rest := frames[heard:]; len(rest) > 0; unheard++ {
		k, _ := wire.FrameLen(rest) // checked by the caller
		rest = rest[k:]
	}
	r.b.st.msgsIn.Add(-uint64(unheard))
	r.b.st.bytesIn.Add(-uint64(len(frames) - heard))
	return unheard
}

// channelOf returns the channel a Msg or Call frame names, or nil for
// any other frame.
func channelOf(frame []byte) []byte {
	at := wire.HeaderLen + 1 // after the flags
	switch frame[wire.HeaderLen-1] {
	case wire.TypeMsg:
	case wire.TypeCall:
		at += wire.CallOverhead // the request id comes first
	default:
		return nil
	}
	if len(frame) < at+1 {
		return nil
	}
	n := int(frame[at])
	if len(frame) < at+1+n {
		return nil
	}
	return frame[at+1 : at+1+n]
}

// sameChannel reports whether subj is under channel's subjects. It
// allocates nothing for a plain channel name (it runs once per frame).
func (s subjects) sameChannel(subj string, channel []byte) bool {
	rest, ok := strings.CutPrefix(subj, s.base)
	if !ok {
		return false
	}
	var want []byte
	if plainToken(unsafe.String(unsafe.SliceData(channel), len(channel))) {
		want = channel
	} else {
		want = appendToken(nil, string(channel))
	}
	return len(rest) > len(want) && rest[len(want)] == '.' && rest[:len(want)] == string(want)
}
