package wire

import (
	"encoding/binary"
	"errors"
)

// ErrBadSeq is returned by ParseSeqMsg for a sequence number of 0: numbers
// start at 1.
var ErrBadSeq = errors.New("wire: seqmsg: sequence number 0")

// VersionAcks is the protocol version that adds acknowledged messages:
// frame types SeqMsg and Ack. An agent of this version numbers the
// messages it emits, keeps them until the server acknowledges them, and
// sends the unacknowledged ones again after a reconnection; receivers of
// this version drop the duplicates by origin, stream and sequence number
// (docs/PROTOCOL.md, section 14). They are sent only on a connection whose
// Hello and Welcome both carry at least this version.
const VersionAcks = 3

// SeqMsgOverhead is what a SeqMsg frame adds to the Msg frame of the same
// fields: the stream (u32) and the sequence number (u64).
const SeqMsgOverhead = 12

// SeqMsgSize returns the size of the frame AppendSeqMsg produces for m.
func SeqMsgSize(m *Msg) int { return MsgSize(m) + SeqMsgOverhead }

// AppendSeqMsg appends a SeqMsg frame: the Msg m, number seq of the
// sending agent's stream (an id the agent draws at random when it starts,
// so that a restarted agent's numbers are not taken for old ones).
func AppendSeqMsg(dst []byte, stream uint32, seq uint64, m *Msg) []byte {
	dst, at := beginFrame(dst, TypeSeqMsg)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = appendMsgFields(dst, m)
	return endFrame(dst, at)
}

// ParseSeqMsg decodes a SeqMsg payload without copying: its stream, its
// sequence number and the message, whose fields alias p.
func ParseSeqMsg(p []byte) (stream uint32, seq uint64, v MsgView, err error) {
	if len(p) >= SeqMsgOverhead {
		if stream, seq = binary.BigEndian.Uint32(p), binary.BigEndian.Uint64(p[4:]); seq != 0 {
			if v, ok := splitMsgFields(p[SeqMsgOverhead:]); ok {
				return stream, seq, v, nil
			}
		}
	}
	d := decoder{b: p}
	stream = d.u32("stream")
	seq = d.u64("seq")
	v = d.msgFields()
	if err = d.done("seqmsg"); err == nil && seq == 0 {
		err = ErrBadSeq
	}
	return stream, seq, v, err
}

// SeqOf returns the stream and sequence number of a SeqMsg payload, with
// ok false if p is too short to hold them.
func SeqOf(p []byte) (stream uint32, seq uint64, ok bool) {
	if len(p) < SeqMsgOverhead {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(p), binary.BigEndian.Uint64(p[4:]), true
}

// AppendMsgOfSeq appends the Msg frame of a SeqMsg payload p: the same
// fields, byte for byte, without the stream and sequence number. p must
// be a payload ParseSeqMsg accepts.
func AppendMsgOfSeq(dst, p []byte) []byte {
	body := p[SeqMsgOverhead:]
	dst = AppendHeader(dst, TypeMsg, len(body))
	return append(dst, body...)
}
