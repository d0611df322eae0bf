// Package wire is netcluster's native binary protocol: a preamble, then
// length-prefixed frames. It also reads and writes the legacy v1 wire of the
// Node.js original (NUL-terminated JSON envelopes). docs/PROTOCOL.md
// documents every byte; keep the two in step.
//
// Every Append function appends one complete frame (length prefix
// included) to dst and returns the extended slice, so a caller can batch
// many frames in one buffer and write them with one system call. Every
// Parse function takes a frame's payload (the bytes after the type byte)
// and never panics, whatever the input.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Preamble opens every native connection, sent once by the agent before
// its first frame. Its first byte, 'N', can never start a legacy JSON
// envelope, so a server tells the two wires apart from one byte.
const Preamble = "NCW\x01"

// Version is the protocol version carried in Hello and Welcome.
const Version = 1

// HeaderLen is the size of a frame header: the length prefix (LenSize
// bytes, a big-endian count of what follows: type byte plus payload), then
// the type byte.
const HeaderLen = LenSize + 1

// DefaultMaxFrame is the default bound on a frame's length field.
const DefaultMaxFrame = 16 << 20

// Frame types. ONLY APPEND TO THIS LIST: the numbers are on the wire.
const (
	TypeHello    byte = 1  // agent → server: first frame after the preamble
	TypeWelcome  byte = 2  // server → agent: answer to Hello
	TypeListen   byte = 3  // agent → server: add a listener pattern
	TypeUnlisten byte = 4  // agent → server: remove a listener pattern
	TypeMsg      byte = 5  // both ways: one event
	TypeError    byte = 6  // both ways: a problem; the server closes after sending one
	TypePing     byte = 7  // both ways: asks for a Pong with the same token
	TypePong     byte = 8  // both ways: answer to Ping
	TypeDropped  byte = 9  // server → agent: messages dropped for this agent
	TypeRequest  byte = 10 // agent → server, control channel only: a control request
	TypeReply    byte = 11 // server → agent: the answer to one Request

	// Version 2 (VersionCalls): request/reply and queue groups.
	TypeCall          byte = 12 // both ways: a request, a Msg that asks for an answer
	TypeAnswer        byte = 13 // both ways: the answer to one Call, addressed to its requester
	TypeNoResponders  byte = 14 // server → agent: no one can answer that Call
	TypeQueueListen   byte = 15 // agent → server: join a queue group
	TypeQueueUnlisten byte = 16 // agent → server: leave a queue group
	TypeQueueMsg      byte = 17 // server → agent: a Msg or Call for one queue group membership

	// Version 3 (VersionAcks): acknowledged messages.
	TypeSeqMsg byte = 20 // both ways: a Msg with its sender's stream and sequence number
	TypeAck    byte = 21 // server → agent: every SeqMsg up to this number is delivered

	// Version 4 (VersionGaps): types 22-25, in gaps.go.
)

// TypeName returns a readable name for a frame type, for errors and logs.
func TypeName(t byte) string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeWelcome:
		return "welcome"
	case TypeListen:
		return "listen"
	case TypeUnlisten:
		return "unlisten"
	case TypeMsg:
		return "msg"
	case TypeError:
		return "error"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeDropped:
		return "dropped"
	case TypeRequest:
		return "request"
	case TypeReply:
		return "reply"
	case TypeCall:
		return "call"
	case TypeAnswer:
		return "answer"
	case TypeNoResponders:
		return "noresponders"
	case TypeQueueListen:
		return "queuelisten"
	case TypeQueueUnlisten:
		return "queueunlisten"
	case TypeQueueMsg:
		return "queuemsg"
	case TypeReplay:
		return "replay"
	case TypeReplayEnd:
		return "replayend"
	case TypeSeqMsg:
		return "seqmsg"
	case TypeAck:
		return "ack"
	case TypeStream:
		return "stream"
	case TypeStreamEnd:
		return "streamend"
	case TypeWatch:
		return "watch"
	case TypeGone:
		return "gone"
	}
	return fmt.Sprintf("type %d", t)
}

// Msg flags.
const (
	// FlagJSON marks Data as a JSON document (the default codec); without
	// it Data is opaque bytes.
	FlagJSON byte = 1 << 0
)

// Error codes carried by Error frames. ONLY APPEND TO THIS LIST.
const (
	CodeMalformed    uint16 = 1  // a frame could not be decoded
	CodeTooLarge     uint16 = 2  // a frame exceeded the maximum frame size
	CodeProtocol     uint16 = 3  // a frame arrived where it is not allowed
	CodeVersion      uint16 = 4  // unsupported protocol version
	CodeBadHello     uint16 = 5  // hello rejected (channel, agent id)
	CodeBadPattern   uint16 = 6  // a listener pattern does not compile
	CodeOrigin       uint16 = 7  // a message claims another channel or agent
	CodeSlowConsumer uint16 = 8  // disconnected: outbound buffer full
	CodeShutdown     uint16 = 9  // the server is shutting down
	CodeChannelGone  uint16 = 10 // the channel was removed by a reload
	CodeForbidden    uint16 = 11 // not allowed on this connection
	CodeBadRequest   uint16 = 12 // a control request failed
)

// Limits of the variable-length fields.
const (
	MaxNameLen    = math.MaxUint8  // channel names, agent ids, node names
	MaxEventLen   = math.MaxUint16 // event names
	MaxPatternLen = math.MaxUint16 // listener patterns
)

// Errors returned by the decoders. Each is wrapped with detail.
var (
	ErrTruncated = errors.New("wire: truncated frame")
	ErrTooLarge  = errors.New("wire: frame too large")
	ErrEmpty     = errors.New("wire: empty frame")
	ErrTrailing  = errors.New("wire: trailing bytes after frame payload")
)

// AppendHeader appends a frame header for a payload of n bytes.
func AppendHeader(dst []byte, typ byte, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n+1))
	return append(dst, typ)
}

// beginFrame appends a header with a zero length and returns the extended
// slice and the offset of the length field; endFrame fills it in.
func beginFrame(dst []byte, typ byte) ([]byte, int) {
	at := len(dst)
	return append(dst, 0, 0, 0, 0, typ), at
}

func endFrame(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-LenSize))
	return dst
}

// decoder reads fields from a payload, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(field string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrTruncated, field)
	}
}

func (d *decoder) u8(field string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(field)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16(field string) uint16 {
	if d.err != nil || len(d.b) < 2 {
		d.fail(field)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u32(field string) uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail(field)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64(field string) uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(field)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(n int, field string) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail(field)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str8(field string) []byte  { return d.bytes(int(d.u8(field)), field) }
func (d *decoder) str16(field string) []byte { return d.bytes(int(d.u16(field)), field) }

// done reports the first error, or ErrTrailing if bytes are left over.
func (d *decoder) done(what string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after %s", ErrTrailing, len(d.b), what)
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return nil
}

func appendStr8(dst []byte, s string) []byte {
	if len(s) > MaxNameLen {
		panic("wire: name longer than 255 bytes") // callers validate first
	}
	return append(append(dst, byte(len(s))), s...)
}

func appendStr16(dst []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		panic("wire: string longer than 65535 bytes") // callers validate first
	}
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(s))), s...)
}
