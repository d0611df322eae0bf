package backbone

import (
	"encoding/binary"
	"errors"
)

// The payload of every NATS message a server publishes is an envelope
// (docs/PROTOCOL.md, "NATS backbone"):
//
//	0      version (1)
//	1      kind: kindMsg or kindChunk
//	2..9   node id of the publishing server
//	10..13 epoch: the publisher's sequence space; a new epoch restarts seq
//	14..21 seq: per publisher, epoch and sequence key (the subject, or the
//	       channel for durable channels), from 1
//	kindMsg:   22.. one wire Msg frame, as the agent sent it
//	kindChunk: 22..25 total length of the frame, 26..29 offset of this
//	           piece, 30.. the piece; the pieces of one frame are published
//	           in order, back to back, on one subject.
//	kindBatch: 22..25 count n, 26.. n whole wire Msg frames back to back,
//	           numbered seq to seq+n-1.
//	kindRequeue: 22 length q of a queue name, 23.. the queue name, then one
//	           whole wire Msg or Call frame: a message a server was given
//	           for that queue group and could not deliver, published again
//	           for NATS to pick another server. Epoch and seq are 0: it is
//	           outside the publisher's numbering; plain subscriptions and
//	           other queue groups ignore it.

const (
	envVersion = 1

	kindMsg     = 1
	kindChunk   = 2
	kindBatch   = 3
	kindRequeue = 4

	envHeaderLen   = 22
	chunkHeaderLen = envHeaderLen + 8
)

// NodeID identifies a server; it is the server's node id.
type NodeID [8]byte

// envelope is a decoded envelope header.
type envelope struct {
	kind   byte
	node   NodeID
	epoch  uint32
	seq    uint64
	count  uint32 // batches only
	total  uint32 // chunks only
	offset uint32 // chunks only
	body   []byte // the frame, or the piece
	queue  string // requeues only
}

var errEnvelope = errors.New("backbone: malformed envelope")

func appendEnvHeader(dst []byte, kind byte, node NodeID, epoch uint32, seq uint64) []byte {
	dst = append(dst, envVersion, kind)
	dst = append(dst, node[:]...)
	dst = binary.BigEndian.AppendUint32(dst, epoch)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func parseEnvelope(p []byte) (envelope, error) {
	if len(p) < envHeaderLen || p[0] != envVersion {
		return envelope{}, errEnvelope
	}
	e := envelope{kind: p[1]}
	copy(e.node[:], p[2:10])
	e.epoch = binary.BigEndian.Uint32(p[10:14])
	e.seq = binary.BigEndian.Uint64(p[14:22])
	switch e.kind {
	case kindMsg:
		e.body = p[envHeaderLen:]
	case kindChunk:
		if len(p) < chunkHeaderLen {
			return envelope{}, errEnvelope
		}
		e.total = binary.BigEndian.Uint32(p[22:26])
		e.offset = binary.BigEndian.Uint32(p[26:30])
		e.body = p[chunkHeaderLen:]
		if uint64(e.offset)+uint64(len(e.body)) > uint64(e.total) || len(e.body) == 0 {
			return envelope{}, errEnvelope
		}
	case kindBatch:
		if len(p) < envHeaderLen+4 {
			return envelope{}, errEnvelope
		}
		e.count = binary.BigEndian.Uint32(p[22:26])
		e.body = p[envHeaderLen+4:]
		if e.count == 0 {
			return envelope{}, errEnvelope
		}
	case kindRequeue:
		if len(p) < envHeaderLen+1 || len(p) < envHeaderLen+1+int(p[envHeaderLen]) {
			return envelope{}, errEnvelope
		}
		q := int(p[envHeaderLen])
		e.queue = string(p[envHeaderLen+1 : envHeaderLen+1+q])
		e.body = p[envHeaderLen+1+q:]
	default:
		return envelope{}, errEnvelope
	}
	return e, nil
}
