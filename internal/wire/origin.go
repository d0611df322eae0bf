package wire

import (
	"bytes"
	"encoding/binary"
)

// AppendOrigin appends the bytes that follow the flags byte in every Msg
// payload emitted on channel by agent with no node: the channel and agent
// names and an empty node, each with its length. A connection that knows
// its agent's origin checks it with ParseMsgFrom as one comparison.
func AppendOrigin(dst []byte, channel, agent string) []byte {
	dst = appendStr8(dst, channel)
	dst = appendStr8(dst, agent)
	return appendStr8(dst, "")
}

// ParseMsgFrom decodes a Msg payload whose origin is origin (made by
// AppendOrigin) as ParseMsg does, checking the origin by comparing bytes
// instead of decoding each name. ok is false if the payload does not carry
// that origin or is malformed: ParseMsg then says what it is.
func ParseMsgFrom(p, origin []byte) (v MsgView, ok bool) {
	at := 1 + len(origin) // after flags and origin
	if len(p) < at+2 || !bytes.Equal(p[1:at], origin) {
		return MsgView{}, false
	}
	ev := at + 2 + int(binary.BigEndian.Uint16(p[at:]))
	if ev > len(p) {
		return MsgView{}, false
	}
	lc := int(p[1])
	ag := 2 + lc // the agent's length byte
	la := int(p[ag])
	node := ag + 1 + la // the node's length byte (0)
	return MsgView{
		Flags:   p[0],
		Channel: p[2:ag:ag],
		Agent:   p[ag+1 : node : node],
		Node:    p[node+1 : node+1 : node+1],
		Event:   p[at+2 : ev : ev],
		Data:    p[ev:],
	}, true
}
