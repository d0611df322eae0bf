package wire

import (
	"encoding/binary"
	"math"
)

// SeqMsgHead is what the SeqMsg frames of one sender share: their type,
// stream and origin fields (channel, agent, node), laid out once by
// NewSeqMsgHead, so that Append writes a message's frame as three copies
// and three fields (its length, number and flags).
type SeqMsgHead []byte

// Where the fields that differ from one message to the next are in a
// head: the length prefix at 0, then the type, the stream, the number and
// the flags.
const (
	headSeqAt   = HeaderLen + 4
	headFlagsAt = headSeqAt + 8
)

// NewSeqMsgHead returns the head of the SeqMsg frames of stream whose
// origin fields are m's (its flags, event and data are not used).
func NewSeqMsgHead(stream uint32, m *Msg) SeqMsgHead {
	h := make([]byte, headFlagsAt+1, headFlagsAt+1+3+len(m.Channel)+len(m.Agent)+len(m.Node))
	h[LenSize] = TypeSeqMsg
	binary.BigEndian.PutUint32(h[HeaderLen:], stream)
	h = appendStr8(h, m.Channel)
	h = appendStr8(h, m.Agent)
	return appendStr8(h, m.Node)
}

// Size returns the size of the frame Append produces for event and data.
func (h SeqMsgHead) Size(event string, data []byte) int {
	return len(h) + 2 + len(event) + len(data)
}

// Append appends a SeqMsg frame, the same bytes as AppendSeqMsg's for
// number seq and a Msg of the head's origin fields and these flags, event
// and data.
func (h SeqMsgHead) Append(dst []byte, seq uint64, flags byte, event string, data []byte) []byte {
	if len(event) > math.MaxUint16 {
		panic("wire: string longer than 65535 bytes") // callers validate first
	}
	at := len(dst)
	dst = append(dst, h...)
	f := dst[at:]
	binary.BigEndian.PutUint32(f, uint32(h.Size(event, data)-LenSize))
	binary.BigEndian.PutUint64(f[headSeqAt:], seq)
	f[headFlagsAt] = flags
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(event)))
	dst = append(dst, event...)
	return append(dst, data...)
}
