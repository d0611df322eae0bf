package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// ErrBadStream is returned by ParseStream and ParseStreamEnd for numbers
// that contradict each other, and for a StreamEnd of an empty channel or
// agent.
var ErrBadStream = errors.New("wire: inconsistent stream frame")

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
// number it gave a message (0 if none), every one of them acknowledged.
func AppendStream(dst []byte, stream uint32, seq uint64) []byte {
	dst = AppendHeader(dst, TypeStream, 12)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// AppendStreamAcked appends a Stream frame of an agent whose messages are
// acknowledged up to acked only: those numbered acked+1 to seq it sends
// again on the connection. With acked at or above seq it is AppendStream.
func AppendStreamAcked(dst []byte, stream uint32, seq, acked uint64) []byte {
	if acked >= seq {
		return AppendStream(dst, stream, seq)
	}
	dst = AppendHeader(dst, TypeStream, 20)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return binary.BigEndian.AppendUint64(dst, acked)
}

// ParseStream decodes a Stream payload. Without its acked field (12
// bytes), acked is seq.
func ParseStream(p []byte) (stream uint32, seq, acked uint64, err error) {
	d := decoder{b: p}
	stream = d.u32("stream")
	seq = d.u64("seq")
	acked = seq
	if len(d.b) > 0 {
		acked = d.u64("acked")
	}
	if err := d.done("stream"); err != nil {
		return stream, seq, acked, err
	}
	if acked > seq {
		return stream, seq, acked, fmt.Errorf("%w: stream: acked %d above seq %d", ErrBadStream, acked, seq)
	}
	return stream, seq, acked, nil
}

// StreamEnd tells a receiver that the connection of a sender's stream
// ended, and every message of it the server routed to the receiver came
// before. Seq is the highest number the connection announced or sent; or,
// if the connection ended before the sender sent again all it had kept,
// the last number it sent or had acknowledged before, with Announced the
// last number the sender had given when it connected: the messages above
// Seq up to Announced were never routed (a gap). Announced is 0 otherwise
// (the frame then lacks the field).
type StreamEnd struct {
	StreamRef
	Seq       uint64
	Announced uint64
}

// AppendStreamEnd appends a StreamEnd frame. Channel and agent are at most
// 255 bytes.
func AppendStreamEnd(dst []byte, e StreamEnd) []byte {
	dst, at := beginFrame(dst, TypeStreamEnd)
	dst = binary.BigEndian.AppendUint32(dst, e.Stream)
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	dst = appendStr8(dst, e.Channel)
	dst = appendStr8(dst, e.Agent)
	if e.Announced > e.Seq {
		dst = binary.BigEndian.AppendUint64(dst, e.Announced)
	}
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
	has := len(d.b) > 0
	if has {
		e.Announced = d.u64("announced")
	}
	if err := d.done("streamend"); err != nil {
		return e, err
	}
	if e.Channel == "" || e.Agent == "" {
		return e, fmt.Errorf("%w: streamend: empty channel or agent", ErrBadStream)
	}
	if has && e.Announced <= e.Seq {
		return e, fmt.Errorf("%w: streamend: announced %d not above seq %d", ErrBadStream, e.Announced, e.Seq)
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
