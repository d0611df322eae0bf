package backbone

import (
	"encoding/binary"
	"sync"
	"time"
)

// maxSeqKeys bounds the sequence keys a publisher remembers; past it the
// publisher starts a new epoch.
const maxSeqKeys = 1 << 16

// maxBatch bounds the frames of one batch envelope, and batchBytes its
// size (also bounded by the server's max_payload).
const (
	maxBatch   = 256
	batchBytes = 64 << 10
	denseWait  = 250 * time.Microsecond
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
	closing bool

	// The flusher's own state.
	epoch uint32
	seqs  map[string]uint64
	buf   []byte
	done  chan struct{}
}

// batch is frames of one subject, back to back.
type batch struct {
	subj   string
	frames []byte
	n      int
}

func (p *publisher) init(b *Backbone) {
	p.b = b
	p.cond = sync.NewCond(&p.mu)
	p.seqs = make(map[string]uint64)
	p.epoch = 1
	// Room for the configured bound and one largest message: a 16 MiB
	// message in the queue does not make the next small one a drop.
	p.limit = max(b.cfg.NATS.OutBuffer, minDurableQueue) + b.cfg.MaxMessage
	p.done = make(chan struct{})
}

// next returns the first of n sequence numbers for key.
func (p *publisher) next(key string, n int) uint64 {
	if len(p.seqs) >= maxSeqKeys {
		clear(p.seqs)
		p.epoch++
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
	if len(frame) > b.cfg.MaxMessage {
		b.st.dropped.Add(1)
		b.warn.soon(&b.st)
		return ErrTooLarge
	}
	if b.closed.Load() {
		b.st.dropped.Add(1)
		return ErrDropped
	}
	if d := b.durables[channel]; d != nil {
		return d.send(event, frame)
	}
	subj := b.subj.event(channel, event)
	p := &b.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing || (p.queued > 0 && p.queued+len(frame) > p.limit) {
		b.st.dropped.Add(1)
		b.warn.soon(&b.st)
		return ErrDropped
	}
	if k := len(p.queue); k > 0 && p.queue[k-1].subj == subj && p.queue[k-1].n < maxBatch &&
		len(p.queue[k-1].frames)+len(frame) <= batchBytes {
		last := &p.queue[k-1]
		last.frames = append(last.frames, frame...)
		last.n++
	} else {
		var bt batch
		if k := len(p.spare); k > 0 {
			bt, p.spare = p.spare[k-1], p.spare[:k-1]
		}
		bt.subj, bt.n = subj, 1
		bt.frames = append(bt.frames[:0], frame...)
		p.queue = append(p.queue, bt)
	}
	p.queued += len(frame)
	b.st.bufferedOut.Store(int64(p.queued))
	p.cond.Signal()
	return nil
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
			p.queued -= len(work[i].frames)
			if cap(work[i].frames) <= batchBytes*2 && len(p.spare) < 64 {
				p.spare = append(p.spare, batch{frames: work[i].frames[:0]})
			}
			work[i] = batch{}
		}
		p.b.st.bufferedOut.Store(int64(p.queued))
		p.mu.Unlock()
	}
}

// flush publishes one batch: as one envelope, or a lone large frame in
// pieces. A refused batch is counted dropped and its numbers reused, so
// receivers see no gap for it.
func (p *publisher) flush(bt *batch) {
	b := p.b
	seq := p.next(bt.subj, bt.n)
	pub := func(subj string, data []byte) error { return b.nc.Publish(subj, data) }
	var err error
	if bt.n == 1 {
		err = publishFrame(&p.buf, b.cfg.NodeID, p.epoch, seq, bt.frames, int(b.nc.MaxPayload()), bt.subj, pub)
	} else {
		maxPayload := int(b.nc.MaxPayload())
		if maxPayload > 0 && envHeaderLen+4+len(bt.frames) > maxPayload {
			// Smaller than a batch, rarely: one envelope per frame.
			err = p.flushEach(bt, seq, maxPayload, pub)
		} else {
			buf := appendEnvHeader(p.buf[:0], kindBatch, b.cfg.NodeID, p.epoch, seq)
			buf = binary.BigEndian.AppendUint32(buf, uint32(bt.n))
			buf = append(buf, bt.frames...)
			p.buf = buf
			err = pub(bt.subj, buf)
		}
	}
	if err != nil {
		p.undo(bt.subj, seq)
		b.st.dropped.Add(uint64(bt.n))
		b.warn.soon(&b.st)
		return
	}
	b.st.msgsOut.Add(uint64(bt.n))
	b.st.bytesOut.Add(uint64(len(bt.frames)))
}

// flushEach publishes the frames of bt one envelope each.
func (p *publisher) flushEach(bt *batch, seq uint64, maxPayload int, pub func(string, []byte) error) error {
	rest := bt.frames
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
	p.mu.Unlock()
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
