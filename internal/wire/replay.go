package wire

import (
	"encoding/binary"
)

// Replay: an agent asks for the recent history of its durable channel
// (docs/PROTOCOL.md, "Replay"). The server answers with the matching
// stored messages, in the order they were stored, as Msg frames with
// FlagReplayed set, then one ReplayEnd with the same id. Only on
// connections whose Hello and Welcome both carry VersionCalls or later.
const (
	TypeReplay    byte = 18 // agent → server: ask for stored messages
	TypeReplayEnd byte = 19 // server → agent: the replay with this id is complete
)

// FlagReplayed marks a Msg a server sends in answer to a Replay: a stored
// message, not a live one.
const FlagReplayed byte = 1 << 1

// MaxReplay is the most messages one Replay returns.
const MaxReplay = 10000

// Replay asks for the last Last stored messages whose event matches
// Pattern, among those stored at or after Since (unix nanoseconds; 0 for
// no bound). Last 0 means MaxReplay.
type Replay struct {
	ID      uint64
	Last    uint32
	Since   int64
	Pattern string
}

// AppendReplay appends a Replay frame.
func AppendReplay(dst []byte, r Replay) []byte {
	dst, at := beginFrame(dst, TypeReplay)
	dst = binary.BigEndian.AppendUint64(dst, r.ID)
	dst = binary.BigEndian.AppendUint32(dst, r.Last)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Since))
	dst = appendStr16(dst, r.Pattern)
	return endFrame(dst, at)
}

// ParseReplay decodes a Replay payload.
func ParseReplay(p []byte) (Replay, error) {
	d := decoder{b: p}
	r := Replay{ID: d.u64("id"), Last: d.u32("last"), Since: int64(d.u64("since"))}
	r.Pattern = string(d.str16("pattern"))
	return r, d.done("replay")
}

// ReplayEnd closes the replay ID: Count messages were sent before it, or,
// with a non-empty Err, the replay failed and none were.
type ReplayEnd struct {
	ID    uint64
	Count uint32
	Err   string
}

// AppendReplayEnd appends a ReplayEnd frame. Err longer than 65535 bytes
// is cut.
func AppendReplayEnd(dst []byte, e ReplayEnd) []byte {
	if len(e.Err) > MaxEventLen {
		e.Err = e.Err[:MaxEventLen]
	}
	dst, at := beginFrame(dst, TypeReplayEnd)
	dst = binary.BigEndian.AppendUint64(dst, e.ID)
	dst = binary.BigEndian.AppendUint32(dst, e.Count)
	dst = appendStr16(dst, e.Err)
	return endFrame(dst, at)
}

// ParseReplayEnd decodes a ReplayEnd payload.
func ParseReplayEnd(p []byte) (ReplayEnd, error) {
	d := decoder{b: p}
	e := ReplayEnd{ID: d.u64("id"), Count: d.u32("count")}
	e.Err = string(d.str16("error"))
	return e, d.done("replay end")
}
