package wire

import (
	"encoding/binary"
	"strings"
)

// Hello is the agent's first frame.
type Hello struct {
	Version uint8  // protocol version the agent speaks
	PID     uint32 // the agent's process id (informational)
	AgentID string // the agent's id, chosen by the agent, unique per connection
	Channel string // the channel the agent joins; must match the socket's
}

// AppendHello appends a Hello frame.
func AppendHello(dst []byte, h Hello) []byte {
	dst, at := beginFrame(dst, TypeHello)
	dst = append(dst, h.Version)
	dst = binary.BigEndian.AppendUint32(dst, h.PID)
	dst = appendStr8(dst, h.AgentID)
	dst = appendStr8(dst, h.Channel)
	return endFrame(dst, at)
}

// ParseHello decodes a Hello payload.
func ParseHello(p []byte) (Hello, error) {
	d := decoder{b: p}
	h := Hello{Version: d.u8("version"), PID: d.u32("pid")}
	h.AgentID = string(d.str8("agent id"))
	h.Channel = string(d.str8("channel"))
	return h, d.done("hello")
}

// Welcome is the server's answer to Hello.
type Welcome struct {
	Version  uint8  // protocol version the server speaks
	MaxFrame uint32 // the largest frame length the server accepts
	ServerID string // the server's node id
}

// AppendWelcome appends a Welcome frame.
func AppendWelcome(dst []byte, w Welcome) []byte {
	dst, at := beginFrame(dst, TypeWelcome)
	dst = append(dst, w.Version)
	dst = binary.BigEndian.AppendUint32(dst, w.MaxFrame)
	dst = appendStr8(dst, w.ServerID)
	return endFrame(dst, at)
}

// ParseWelcome decodes a Welcome payload.
func ParseWelcome(p []byte) (Welcome, error) {
	d := decoder{b: p}
	w := Welcome{Version: d.u8("version"), MaxFrame: d.u32("max frame")}
	w.ServerID = string(d.str8("server id"))
	return w, d.done("welcome")
}

// AppendListen appends a Listen (typ TypeListen) or Unlisten (TypeUnlisten)
// frame for a pattern.
func AppendListen(dst []byte, typ byte, pattern string) []byte {
	dst, at := beginFrame(dst, typ)
	dst = appendStr16(dst, pattern)
	return endFrame(dst, at)
}

// ParseListen decodes a Listen or Unlisten payload.
func ParseListen(p []byte) (string, error) {
	d := decoder{b: p}
	pat := d.str16("pattern")
	return string(pat), d.done("listen")
}

// Msg is one event. Its origin fields name where it was first emitted: the
// channel and agent, and the node for messages that crossed the network
// (empty for local ones).
type Msg struct {
	Flags   byte
	Channel string
	Agent   string
	Node    string
	Event   string
	Data    []byte
}

// MsgView is a decoded Msg whose fields alias the frame, so decoding
// allocates nothing. It is valid only as long as the frame's bytes are.
type MsgView struct {
	Flags   byte
	Channel []byte
	Agent   []byte
	Node    []byte
	Event   []byte
	Data    []byte
}

// MsgOverhead is the size of a Msg frame without its variable fields.
const MsgOverhead = HeaderLen + 1 + 1 + 1 + 1 + 2

// MsgSize returns the size of the frame AppendMsg produces for m.
func MsgSize(m *Msg) int {
	return MsgOverhead + len(m.Channel) + len(m.Agent) + len(m.Node) + len(m.Event) + len(m.Data)
}

// AppendMsg appends a Msg frame.
func AppendMsg(dst []byte, m *Msg) []byte {
	dst, at := beginFrame(dst, TypeMsg)
	dst = append(dst, m.Flags)
	dst = appendStr8(dst, m.Channel)
	dst = appendStr8(dst, m.Agent)
	dst = appendStr8(dst, m.Node)
	dst = appendStr16(dst, m.Event)
	dst = append(dst, m.Data...)
	return endFrame(dst, at)
}

// ParseMsg decodes a Msg payload without copying.
func ParseMsg(p []byte) (MsgView, error) {
	if v, ok := splitMsgFields(p); ok {
		return v, nil
	}
	d := decoder{b: p}
	var v MsgView
	v.Flags = d.u8("flags")
	v.Channel = d.str8("channel")
	v.Agent = d.str8("agent")
	v.Node = d.str8("node")
	v.Event = d.str16("event")
	if d.err == nil {
		v.Data = d.b
		d.b = nil
	}
	return v, d.done("msg")
}

// Msg copies the view into a Msg that owns its bytes.
func (v *MsgView) Msg() Msg {
	return Msg{
		Flags:   v.Flags,
		Channel: string(v.Channel),
		Agent:   string(v.Agent),
		Node:    string(v.Node),
		Event:   string(v.Event),
		Data:    append([]byte(nil), v.Data...),
	}
}

// Error is a problem report. After sending one the server closes the
// connection.
type Error struct {
	Code uint16
	Text string
}

func (e *Error) Error() string { return e.Text }

// AppendError appends an Error frame. Text longer than 65535 bytes is cut.
func AppendError(dst []byte, e Error) []byte {
	if len(e.Text) > MaxEventLen {
		e.Text = strings.ToValidUTF8(e.Text[:MaxEventLen], "")
	}
	dst, at := beginFrame(dst, TypeError)
	dst = binary.BigEndian.AppendUint16(dst, e.Code)
	dst = appendStr16(dst, e.Text)
	return endFrame(dst, at)
}

// ParseError decodes an Error payload.
func ParseError(p []byte) (Error, error) {
	d := decoder{b: p}
	e := Error{Code: d.u16("code")}
	e.Text = string(d.str16("text"))
	return e, d.done("error")
}

// AppendU64 appends a frame whose payload is one 64-bit number: Ping,
// Pong (a token) and Dropped (a count).
func AppendU64(dst []byte, typ byte, v uint64) []byte {
	dst = AppendHeader(dst, typ, 8)
	return binary.BigEndian.AppendUint64(dst, v)
}

// ParseU64 decodes a Ping, Pong or Dropped payload.
func ParseU64(p []byte) (uint64, error) {
	d := decoder{b: p}
	v := d.u64("value")
	return v, d.done("ping, pong or dropped")
}

// Request is a control request; Reply answers it with the same ID.
type Request struct {
	ID   uint64
	Body []byte // JSON
}

// AppendRequest appends a Request (typ TypeRequest) or Reply (TypeReply)
// frame.
func AppendRequest(dst []byte, typ byte, r Request) []byte {
	dst = AppendHeader(dst, typ, 8+len(r.Body))
	dst = binary.BigEndian.AppendUint64(dst, r.ID)
	return append(dst, r.Body...)
}

// ParseRequest decodes a Request or Reply payload. Body aliases p.
func ParseRequest(p []byte) (Request, error) {
	d := decoder{b: p}
	r := Request{ID: d.u64("id")}
	if d.err == nil {
		r.Body = d.b
		d.b = nil
	}
	return r, d.done("request")
}
