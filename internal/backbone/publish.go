package backbone

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
)

// maxSeqKeys bounds the sequence keys a publisher remembers; past it the
// publisher starts a new epoch.
const maxSeqKeys = 1 << 16

// publisher numbers and publishes plain messages. One mutex keeps the
// publications of the server in the order Send was called, and the pieces
// of a large message back to back.
type publisher struct {
	b     *Backbone
	mu    sync.Mutex
	epoch uint32
	seqs  map[string]uint64
	buf   []byte
}

func (p *publisher) init(b *Backbone) {
	p.b = b
	p.seqs = make(map[string]uint64)
	p.epoch = 1
}

// next returns the next sequence number for key. mu is held.
func (p *publisher) next(key string) uint64 {
	if len(p.seqs) >= maxSeqKeys {
		clear(p.seqs)
		p.epoch++
	}
	s := p.seqs[key] + 1
	p.seqs[key] = s
	return s
}

// undo gives back the number next returned for key. mu is held.
func (p *publisher) undo(key string, seq uint64) {
	if p.seqs[key] == seq {
		p.seqs[key] = seq - 1
	}
}

// Send publishes a message emitted by a local agent on channel with event
// name event; frame is its whole wire Msg frame, not retained. Durable
// channels queue it for JetStream. A message the outbound buffer cannot
// hold is dropped, counted and reported as ErrDropped.
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
	seq := p.next(subj)
	err := p.publish(subj, seq, frame, func(subj string, data []byte) error {
		return b.nc.Publish(subj, data)
	})
	if err != nil {
		p.undo(subj, seq)
		b.st.dropped.Add(1)
		b.warn.soon(&b.st)
		if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionClosed) {
			return ErrDropped
		}
		return errors.Join(ErrDropped, err)
	}
	b.st.msgsOut.Add(1)
	b.st.bytesOut.Add(uint64(len(frame)))
	return nil
}

// publish sends frame as one envelope, or in pieces when the server's
// max_payload is smaller, through pub. mu is held (p.buf is shared).
func (p *publisher) publish(subj string, seq uint64, frame []byte, pub func(subj string, data []byte) error) error {
	return publishFrame(&p.buf, p.b.cfg.NodeID, p.epoch, seq, frame, int(p.b.nc.MaxPayload()), subj, pub)
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
