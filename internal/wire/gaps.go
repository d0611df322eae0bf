package wire

import (
	"encoding/binary"
	"errors"
)

// VersionGaps is the protocol version that tells receivers of a gap a
// server crash may leave when the sender died too (docs/PROTOCOL.md,
// section 14, "Gaps"): an agent announces its stream on each connection
// (Stream), the server tells receivers when a sender's connection ends
// (StreamEnd), and after a reconnection a receiver asks which of the
// streams it still receives are connected (Watch), the server answering
// with those that are not (Gone). Sent only on a connection whose Hello
// and Welcome both carry at least this version.
const VersionGaps = 4

// Version 4 (VersionGaps) frame types. ONLY APPEND (see wire.go).
const (
	TypeStream    byte = 22 // agent → server: this connection's stream and last number
	TypeStreamEnd byte = 23 // server → agent: a sender's connection ended; its messages to you are before this
	TypeWatch     byte = 24 // agent → server: the streams it receives; which are connected?
	TypeGone      byte = 25 // server → agent: of a Watch, the streams that are not connected
)

// ErrBadStream is returned by ParseStreamEnd for a StreamEnd of an empty
// channel or agent.
var ErrBadStream = errors.New("wire: streamend: empty channel or agent")

// StreamRef names one sender's stream: its origin channel and agent, and
// the stream id it draws when it starts.
type StreamRef struct {
	Channel string
	Agent   string
	Stream  uint32
}

// RefSize is the size of r in a Watch or Gone payload.
func RefSize(r StreamRef) int { return 2 + len(r.Channel) + len(r.Agent) + 4 }

// AppendStream appends a Stream frame: the agent's stream id and the last
// number it gave a message (0 if none).
func AppendStream(dst []byte, stream uint32, seq uint64) []byte {
	dst = AppendHeader(dst, TypeStream, 12)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// ParseStream decodes a Stream payload.
func ParseStream(p []byte) (stream uint32, seq uint64, err error) {
	d := decoder{b: p}
	stream = d.u32("stream")
	seq = d.u64("seq")
	return stream, seq, d.done("stream")
}

// StreamEnd tells a receiver that the connection of a sender's stream
// ended: the highest number it announced or sent on that connection, Seq,
// and every message of it the server routed to the receiver came before.
type StreamEnd struct {
	StreamRef
	Seq uint64
}

// AppendStreamEnd appends a StreamEnd frame. Channel and agent are at most
// 255 bytes.
func AppendStreamEnd(dst []byte, e StreamEnd) []byte {
	dst, at := beginFrame(dst, TypeStreamEnd)
	dst = binary.BigEndian.AppendUint32(dst, e.Stream)
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	dst = appendStr8(dst, e.Channel)
	dst = appendStr8(dst, e.Agent)
	return endFrame(dst, at)
}

// ParseStreamEnd decodes a StreamEnd payload.
func ParseStreamEnd(p []byte) (StreamEnd, error) {
	d := decoder{b: p}
	var e StreamEnd
	e.Stream = d.u32("stream")
	e.Seq = d.u64("seq")
	e.Channel = string(d.str8("channel"))
	e.Agent = string(d.str8("agent"))
	if err := d.done("streamend"); err != nil {
		return e, err
	}
	if e.Channel == "" || e.Agent == "" {
		return e, ErrBadStream
	}
	return e, nil
}

// AppendRefs appends a Watch (typ TypeWatch) or Gone (TypeGone) frame
// listing refs, each as channel (str8), agent (str8), stream (u32).
func AppendRefs(dst []byte, typ byte, refs []StreamRef) []byte {
	dst, at := beginFrame(dst, typ)
	for _, r := range refs {
		dst = appendStr8(dst, r.Channel)
		dst = appendStr8(dst, r.Agent)
		dst = binary.BigEndian.AppendUint32(dst, r.Stream)
	}
	return endFrame(dst, at)
}

// ParseRefs decodes a Watch or Gone payload: the streams it lists, in
// order, appended to dst. An entry with an empty channel or agent is
// malformed; at most limit entries are accepted (ErrTooMany past them).
func ParseRefs(dst []StreamRef, p []byte, limit int) ([]StreamRef, error) {
	d := decoder{b: p}
	for n := 0; len(d.b) > 0; n++ {
		if n == limit {
			return dst, ErrTooMany
		}
		ch := d.str8("channel")
		ag := d.str8("agent")
		st := d.u32("stream")
		if d.err != nil {
			return dst, d.done("watch or gone")
		}
		if len(ch) == 0 || len(ag) == 0 {
			return dst, ErrBadRef
		}
		dst = append(dst, StreamRef{Channel: string(ch), Agent: string(ag), Stream: st})
	}
	return dst, nil
}

// Errors of ParseRefs.
var (
	ErrBadRef  = errors.New("wire: watch or gone: an entry with an empty channel or agent")
	ErrTooMany = errors.New("wire: watch or gone: too many entries")
)
