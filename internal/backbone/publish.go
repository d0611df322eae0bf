package backbone

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// maxSeqKeys bounds the sequence keys a publisher remembers; past it the
// publisher starts a new epoch.
const maxSeqKeys = 1 << 16

// maxBatch bounds the frames of one plain batch envelope, and batchBytes
// its size; batchLimit bounds it further by the NATS server's max_payload
// and a quarter of outbuffer. Dense traffic fills them: the publisher is
// behind whenever they are full, and each NATS message costs the three
// servers a publication, a write, a read and a wake-up whatever its size
// (in S9, batches of 256 frames, 85 % of them full, cost host 1 and host 2
// 10 % more CPU than these). Durable channels batch up to durableBatch
// frames and durableBytes, their acknowledgement round trip setting the
// size.
const (
	maxBatch     = 2048
	batchBytes   = 256 << 10
	minBatch     = 64 << 10 // the byte bound before max_payload is known
	durableBatch = 256
	durableBytes = 64 << 10
	denseWait    = 250 * time.Microsecond
	maxSpare     = 16 // emptied batches kept for reuse
)

// publisher queues plain messages and publishes them from one goroutine,
// in the order Send was called: consecutive messages on one subject that
// are waiting together go in one batch envelope, so dense traffic costs
// NATS one message per batch; sparse traffic is published at once.
type publisher struct {
	b *Backbone

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []batch // waiting, in order
	spare   []batch
	queued  int // bytes in queue
	limit   int
	crowd   int           // past this many bytes queued, senders should wait (Crowded)
	room    chan struct{} // closed when queued falls to crowd (WaitRoom)
	closing bool

	// A one-entry memo of the last plain subject Send computed (under mu):
	// an agent streaming one event costs no subject encoding per message.
	memoCh, memoEv, memoSubj string

	// The flusher's own state; lastEpoch is epoch as the flusher last set
	// it, for TakeSends.
	epoch     uint32
	lastEpoch atomic.Uint32
	seqs      map[string]uint64
	buf       []byte
	done      chan struct{}
}

// batch is frames of one subject, back to back, after batchHead bytes
// kept for the envelope's header: the flusher writes it in place and
// publishes the batch without copying it again.
type batch struct {
	subj   string
	frames []byte // batchHead bytes, then the frames
	n      int
}

// batchHead is the room a batch keeps for its envelope header (kindBatch's
// is the longest that goes in place).
const batchHead = envHeaderLen + 4

var zeroHead [batchHead]byte

// body returns the frames of bt.
func (bt *batch) body() []byte { return bt.frames[batchHead:] }

func (p *publisher) init(b *Backbone) {
	p.b = b
	p.cond = sync.NewCond(&p.mu)
	p.seqs = make(map[string]uint64)
	p.epoch = 1
	p.lastEpoch.Store(1)
	// Room for the configured bound and one largest message: a 16 MiB
	// message in the queue does not make the next small one a drop.
	p.limit = max(b.cfg.NATS.OutBuffer, minDurableQueue) + b.cfg.MaxMessage
	p.crowd = max(b.cfg.NATS.OutBuffer, minDurableQueue) / 4 * 3
	p.done = make(chan struct{})
}

// next returns the first of n sequence numbers for key.
func (p *publisher) next(key string, n int) uint64 {
	if len(p.seqs) >= maxSeqKeys {
		clear(p.seqs)
		p.epoch++
		p.lastEpoch.Store(p.epoch)
	}
	s := p.seqs[key] + 1
	p.seqs[key] = s + uint64(n) - 1
	return s
}

// undo gives back the numbers next returned for key.
func (p *publisher) undo(key string, first uint64) {
	p.seqs[key] = first - 1
}

// Send publishes a message emitted by a local agent on channel with event
// name event; frame is its whole wire Msg frame, not retained. Durable
// channels queue it for JetStream. A message the outbound buffer cannot
// hold is dropped, counted and reported as ErrDropped; one that NATS
// refuses later (its reconnect buffer full) is dropped and counted then.
func (b *Backbone) Send(channel, event string, frame []byte) error {
	return b.send(channel, event, frame, false)
}

// SendMsg is Send for a Msg frame given by its payload (the bytes after
// its type byte), as a SeqMsg carries it: the frame is written straight
// into the batch, without being made whole first.
func (b *Backbone) SendMsg(channel, event string, payload []byte) error {
	return b.send(channel, event, payload, true)
}

// send is Send of a frame, or SendMsg of a payload (payload true).
func (b *Backbone) send(channel, event string, out []byte, payload bool) error {
	size := len(out)
	if payload {
		size += wire.HeaderLen
	}
	if size > b.cfg.MaxMessage {
		b.st.dropped.Add(1)
		b.warn.soon(&b.st)
		return ErrTooLarge
	}
	if len(b.durables) > 0 {
		if d := b.durables[channel]; d != nil {
			// A copy of the frame as the agent sent it. Closed, d drops
			// it (stopped), or gives it to the Backbone it was handed
			// over to (TakeSends).
			frame := make([]byte, 0, size)
			if payload {
				frame = wire.AppendHeader(frame, wire.TypeMsg, len(out))
			}
			return d.send(event, append(frame, out...))
		}
	}
	if b.closed.Load() {
		b.st.dropped.Add(1)
		return ErrDropped
	}
	p := &b.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.memoEv != event || p.memoCh != channel {
		// event may alias the caller's read buffer: the memo keeps copies.
		p.memoCh, p.memoEv = strings.Clone(channel), strings.Clone(event)
		p.memoSubj = b.subj.event(channel, event)
	}
	subj := p.memoSubj
	if p.closing || (p.queued > 0 && p.queued+size > p.limit) {
		b.st.dropped.Add(1)
		b.warn.soon(&b.st)
		return ErrDropped
	}
	b.queueLocked(subj, out, payload, size)
	b.st.bufferedOut.Store(int64(p.queued))
	p.cond.Signal()
	return nil
}

// SendSeqMsgs is SendMsg of the Msg payload of each SeqMsg frame in
// frames: whole frames, back to back, all on channel with event name event
// (a run of one agent's stream, as its server read them). They are queued
// under one lock, with one look at the subject's memo and one wake-up of
// the flusher, rather than one each: in S9 the lock per message, shared
// with the flusher, was a quarter of what queueing cost host 1. Each frame
// is bounded, dropped and counted as SendMsg does it. It stops after a
// frame that left the queue crowded (Crowded, reported by crowded) and
// returns the frames it did not look at: the caller waits for room
// (WaitRoom) before it sends those, as it would after a SendMsg.
func (b *Backbone) SendSeqMsgs(channel, event string, frames []byte) (rest []byte, crowded bool) {
	const skip = wire.HeaderLen + wire.SeqMsgOverhead
	if b.closed.Load() || len(b.durables) > 0 && b.durables[channel] != nil {
		for len(frames) > 0 {
			n := frameLen(frames)
			err := b.send(channel, event, frames[skip:n], true)
			if frames = frames[n:]; err == nil && b.Crowded() {
				return frames, true
			}
		}
		return nil, false
	}
	p := &b.pub
	p.mu.Lock()
	if p.memoEv != event || p.memoCh != channel {
		p.memoCh, p.memoEv = strings.Clone(channel), strings.Clone(event)
		p.memoSubj = b.subj.event(channel, event)
	}
	subj := p.memoSubj
	var tooLarge, dropped uint64
	queued := false
	for len(frames) > 0 {
		n := frameLen(frames)
		out := frames[skip:n]
		frames = frames[n:]
		size := len(out) + wire.HeaderLen
		switch {
		case size > b.cfg.MaxMessage:
			tooLarge++
			continue
		case p.closing || (p.queued > 0 && p.queued+size > p.limit):
			dropped++
			continue
		}
		b.queueLocked(subj, out, true, size)
		queued = true
		if p.queued > p.crowd && b.up.Load() {
			crowded = true
			break
		}
	}
	if queued {
		b.st.bufferedOut.Store(int64(p.queued))
		p.cond.Signal()
	}
	p.mu.Unlock()
	if tooLarge+dropped > 0 {
		b.st.dropped.Add(tooLarge + dropped)
		b.warn.soon(&b.st)
	}
	return frames, crowded
}

// queueLocked queues what send was given, size bytes as a frame, on subj:
// into the last batch if it is on subj and has room (batchLimit), else in
// a new one. p.mu is held; the caller publishes the new size
// (bufferedOut) and wakes the flusher.
func (b *Backbone) queueLocked(subj string, out []byte, payload bool, size int) {
	p := &b.pub
	before := 0
	if k := len(p.queue); k > 0 && p.queue[k-1].subj == subj && p.queue[k-1].n < maxBatch &&
		len(p.queue[k-1].frames)+size+len(b.nodeHex) <= b.batchLimit() {
		last := &p.queue[k-1]
		before = len(last.frames)
		last.frames = b.appendOut(last.frames, out, payload)
		last.n++
	} else {
		var bt batch
		if k := len(p.spare); k > 0 {
			bt, p.spare = p.spare[k-1], p.spare[:k-1]
		}
		bt.subj, bt.n = subj, 1
		bt.frames = b.appendOut(append(bt.frames[:0], zeroHead[:]...), out, payload)
		before = batchHead
		p.queue = append(p.queue, bt)
	}
	p.queued += len(p.queue[len(p.queue)-1].frames) - before
}

// batchLimit is the largest plain batch envelope: batchBytes, but no more
// than the NATS server's max_payload (as the last connection's INFO gave
// it; minBatch before any) nor a quarter of outbuffer (what nats.go holds
// during an outage: one batch must not take it all), nor less than
// minBatch when outbuffer is smaller.
func (b *Backbone) batchLimit() int {
	limit := batchBytes
	if mp := int(b.maxPayload.Load()); mp > 0 {
		limit = min(limit, mp)
	} else {
		limit = minBatch
	}
	if ob := b.cfg.NATS.OutBuffer; ob > 0 {
		limit = min(limit, max(ob/4, minBatch))
	}
	return limit
}

// appendOut appends what send was given to dst: a whole frame
// (appendFrame), or a Msg frame of the payload out, with the server's node
// id written into its Node field if that is empty.
func (b *Backbone) appendOut(dst, out []byte, payload bool) []byte {
	if !payload {
		return b.appendFrame(dst, out)
	}
	at, ok := nodeAt(out, 1) // after the flags: the channel
	if !ok || out[at] != 0 {
		dst = wire.AppendHeader(dst, wire.TypeMsg, len(out))
		return append(dst, out...)
	}
	dst = wire.AppendHeader(dst, wire.TypeMsg, len(out)+len(b.nodeHex))
	dst = append(dst, out[:at]...)
	dst = append(dst, byte(len(b.nodeHex)))
	dst = append(dst, b.nodeHex[:]...)
	return append(dst, out[at+1:]...)
}

// appendFrame appends frame, a wire frame as a local agent sent it, to
// dst. A Msg frame (whose Node field is empty) gets the server's node id,
// in hex, written into its Node field: the frame the receivers route, as
// is. Any other frame is appended unchanged.
func (b *Backbone) appendFrame(dst, frame []byte) []byte {
	at, ok := msgNodeAt(frame)
	if !ok || frame[at] != 0 {
		return append(dst, frame...)
	}
	start := len(dst)
	dst = append(dst, frame[:at]...)
	dst = append(dst, byte(len(b.nodeHex)))
	dst = append(dst, b.nodeHex[:]...)
	dst = append(dst, frame[at+1:]...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-wire.LenSize))
	return dst
}

// msgNodeAt returns where the length of a Msg frame's Node field is; ok is
// false if frame is no Msg frame long enough to have one.
func msgNodeAt(frame []byte) (at int, ok bool) {
	if len(frame) < wire.MsgOverhead || frame[wire.HeaderLen-1] != wire.TypeMsg {
		return 0, false
	}
	return nodeAt(frame, wire.HeaderLen+1) // after the flags: the channel
}

// nodeAt returns where the length of the Node field is in p, a Msg frame
// or payload whose channel's length is at at; ok is false if p is too
// short to have one.
func nodeAt(p []byte, at int) (int, bool) {
	if at >= len(p) {
		return 0, false
	}
	at += 1 + int(p[at]) // the channel
	if at >= len(p) {
		return 0, false
	}
	at += 1 + int(p[at]) // the agent
	return at, at < len(p)
}

// flushLoop publishes the queue until close, and what is left then.
func (p *publisher) flushLoop() {
	defer p.b.wg.Done()
	defer close(p.done)
	var work []batch
	dense := false
	for {
		if dense {
			// The last round found several messages waiting: traffic is
			// dense, and a moment's wait fills the next batch (one NATS
			// message instead of many). Sparse traffic waits for nothing.
			time.Sleep(denseWait)
		}
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closing {
			p.cond.Wait()
		}
		if len(p.queue) == 0 {
			p.mu.Unlock()
			return
		}
		work, p.queue = p.queue, work[:0]
		p.mu.Unlock()
		dense = len(work) > 1 || work[0].n > 1

		for i := range work {
			p.flush(&work[i])
		}

		p.mu.Lock()
		for i := range work {
			p.queued -= len(work[i].body())
			if cap(work[i].frames) <= batchBytes*2 && len(p.spare) < maxSpare {
				p.spare = append(p.spare, batch{frames: work[i].frames[:0]})
			}
			work[i] = batch{}
		}
		p.b.st.bufferedOut.Store(int64(p.queued))
		if p.room != nil && p.queued <= p.crowd {
			close(p.room)
			p.room = nil
		}
		p.mu.Unlock()
		p.b.sampleBuffered(p.b.nc)
	}
}

// flush publishes one batch: as one envelope, or a lone large frame in
// pieces. A refused batch is counted dropped and its numbers reused, so
// receivers see no gap for it.
func (p *publisher) flush(bt *batch) {
	b := p.b
	seq := p.next(bt.subj, bt.n)
	pub := b.publishPlain
	maxPayload := int(b.nc.MaxPayload())
	var err error
	switch {
	case bt.n == 1 && maxPayload > 0 && envHeaderLen+len(bt.body()) <= maxPayload:
		// One frame: a kindMsg envelope, its header written in place.
		env := bt.frames[batchHead-envHeaderLen:]
		appendEnvHeader(env[:0], kindMsg, b.cfg.NodeID, p.epoch, seq)
		err = pub(bt.subj, env)
	case bt.n == 1:
		err = publishFrame(&p.buf, b.cfg.NodeID, p.epoch, seq, bt.body(), maxPayload, bt.subj, pub)
	case maxPayload > 0 && len(bt.frames) > maxPayload:
		// Smaller than a batch, rarely: one envelope per frame.
		err = p.flushEach(bt, seq, maxPayload, pub)
	default:
		head := appendEnvHeader(bt.frames[:0], kindBatch, b.cfg.NodeID, p.epoch, seq)
		binary.BigEndian.AppendUint32(head, uint32(bt.n))
		err = pub(bt.subj, bt.frames)
	}
	if err != nil {
		p.undo(bt.subj, seq)
		b.st.dropped.Add(uint64(bt.n))
		b.warn.soon(&b.st)
		return
	}
	b.st.msgsOut.Add(uint64(bt.n))
	b.st.bytesOut.Add(uint64(len(bt.body())))
}

// flushEach publishes the frames of bt one envelope each.
func (p *publisher) flushEach(bt *batch, seq uint64, maxPayload int, pub func(string, []byte) error) error {
	rest := bt.body()
	for i := 0; len(rest) > 0; i++ {
		n := frameLen(rest)
		if err := publishFrame(&p.buf, p.b.cfg.NodeID, p.epoch, seq+uint64(i), rest[:n], maxPayload, bt.subj, pub); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// frameLen is the length of the wire frame at the start of b (whole, as
// Send queued it).
func frameLen(b []byte) int {
	return 4 + int(binary.BigEndian.Uint32(b))
}

// close makes flushLoop publish what is queued and return.
func (p *publisher) close() {
	p.mu.Lock()
	p.closing = true
	p.cond.Broadcast()
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
	p.mu.Unlock()
}

// Crowded reports whether the messages waiting to be published on plain
// channels passed three quarters of the configured bound (outbuffer)
// while NATS is connected: NATS takes less than the local agents send,
// and a sender should wait for room (WaitRoom) rather than have its
// messages dropped once the bound is reached. It is one atomic load while
// not crowded, and never waits for nats.go (whose lock a write to a stalled
// NATS server holds).
func (b *Backbone) Crowded() bool {
	return b.st.bufferedOut.Load() > int64(b.pub.crowd) && b.up.Load()
}

// WaitRoom waits, for at most d, until the messages waiting to be
// published on plain channels are back to three quarters of the bound. It
// reports whether they are; it returns false at once when NATS is not
// connected (an outage buffers, then drops: senders go on) or the
// backbone is closed.
func (b *Backbone) WaitRoom(d time.Duration) bool {
	p := &b.pub
	p.mu.Lock()
	if p.queued <= p.crowd {
		p.mu.Unlock()
		return true
	}
	if p.closing || !b.up.Load() {
		p.mu.Unlock()
		return false
	}
	if p.room == nil {
		p.room = make(chan struct{})
	}
	room := p.room
	p.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-room:
		return !b.closed.Load()
	case <-t.C:
		return false
	}
}

// publishFrame builds the envelopes of one frame in *buf and hands each to
// pub.
func publishFrame(buf *[]byte, node NodeID, epoch uint32, seq uint64, frame []byte, maxPayload int, subj string, pub func(subj string, data []byte) error) error {
	if maxPayload <= chunkHeaderLen {
		maxPayload = 64 << 10 // not connected yet: the limit is unknown, stay well below any
	}
	if envHeaderLen+len(frame) <= maxPayload {
		b := appendEnvHeader((*buf)[:0], kindMsg, node, epoch, seq)
		b = append(b, frame...)
		*buf = b
		return pub(subj, b)
	}
	piece := maxPayload - chunkHeaderLen
	for off := 0; off < len(frame); off += piece {
		end := min(off+piece, len(frame))
		b := appendEnvHeader((*buf)[:0], kindChunk, node, epoch, seq)
		b = binary.BigEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.BigEndian.AppendUint32(b, uint32(off))
		b = append(b, frame[off:end]...)
		*buf = b
		if err := pub(subj, b); err != nil {
			return err
		}
	}
	return nil
}
