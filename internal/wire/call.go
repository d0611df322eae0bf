package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadInner is returned by ParseQueueMsg for a QueueMsg that wraps a
// frame other than a Msg or a Call.
var ErrBadInner = errors.New("wire: bad wrapped frame")

// VersionCalls is the protocol version that adds request/reply and queue
// groups: frame types Call, Answer, NoResponders, QueueListen,
// QueueUnlisten and QueueMsg. They are sent only on a connection whose
// Hello and Welcome both carry at least this version; a peer that speaks
// Version (1) never receives them.
const VersionCalls = 2

// MaxGroupLen is the longest queue group name the encoding carries (str8).
const MaxGroupLen = MaxNameLen

// CallOverhead is what a Call frame adds to the Msg frame of the same
// fields: the request id.
const CallOverhead = 8

// CallSize returns the size of the frame AppendCall produces for m.
func CallSize(m *Msg) int { return MsgSize(m) + CallOverhead }

// AppendCall appends a Call frame: a request, the Msg m that asks for an
// answer, with the id the requesting agent chose for it.
func AppendCall(dst []byte, id uint64, m *Msg) []byte {
	dst, at := beginFrame(dst, TypeCall)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = appendMsgFields(dst, m)
	return endFrame(dst, at)
}

// ParseCall decodes a Call payload without copying: the request id and
// the message, whose fields alias p.
func ParseCall(p []byte) (id uint64, v MsgView, err error) {
	if len(p) >= 8 {
		if v, ok := splitMsgFields(p[8:]); ok {
			return binary.BigEndian.Uint64(p), v, nil
		}
	}
	d := decoder{b: p}
	id = d.u64("id")
	v = d.msgFields()
	return id, v, d.done("call")
}

// Addr names the agent an Answer goes to: the origin of the Call it
// answers.
type Addr struct {
	Channel string // the requester's channel
	Agent   string // the requester's agent id
	Node    string // the requester's server, "" for this server
}

// AddrView is a decoded Addr whose fields alias the frame.
type AddrView struct {
	Channel []byte
	Agent   []byte
	Node    []byte
}

// Addr copies the view into an Addr.
func (a *AddrView) Addr() Addr {
	return Addr{Channel: string(a.Channel), Agent: string(a.Agent), Node: string(a.Node)}
}

// AnswerSize returns the size of the frame AppendAnswer produces.
func AnswerSize(to *Addr, m *Msg) int {
	return MsgSize(m) + 8 + 3 + len(to.Channel) + len(to.Agent) + len(to.Node)
}

// AppendAnswer appends an Answer frame: the reply m, from its origin
// fields, to the request id of the agent at to.
func AppendAnswer(dst []byte, id uint64, to *Addr, m *Msg) []byte {
	dst, at := beginFrame(dst, TypeAnswer)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = appendStr8(dst, to.Channel)
	dst = appendStr8(dst, to.Agent)
	dst = appendStr8(dst, to.Node)
	dst = appendMsgFields(dst, m)
	return endFrame(dst, at)
}

// ParseAnswer decodes an Answer payload without copying.
func ParseAnswer(p []byte) (id uint64, to AddrView, v MsgView, err error) {
	d := decoder{b: p}
	id = d.u64("id")
	to.Channel = d.str8("to channel")
	to.Agent = d.str8("to agent")
	to.Node = d.str8("to node")
	v = d.msgFields()
	return id, to, v, d.done("answer")
}

// QueueListen makes a connection a member of a queue group: of the
// messages whose event matches Pattern, each goes to one member of the
// group Group. SID, chosen by the agent and unique among its connection's
// queue listeners, names the membership in QueueUnlisten and QueueMsg.
type QueueListen struct {
	SID     uint32
	Group   string
	Pattern string
}

// AppendQueueListen appends a QueueListen frame.
func AppendQueueListen(dst []byte, q QueueListen) []byte {
	dst, at := beginFrame(dst, TypeQueueListen)
	dst = binary.BigEndian.AppendUint32(dst, q.SID)
	dst = appendStr8(dst, q.Group)
	dst = appendStr16(dst, q.Pattern)
	return endFrame(dst, at)
}

// ParseQueueListen decodes a QueueListen payload.
func ParseQueueListen(p []byte) (QueueListen, error) {
	d := decoder{b: p}
	q := QueueListen{SID: d.u32("sid")}
	q.Group = string(d.str8("group"))
	q.Pattern = string(d.str16("pattern"))
	return q, d.done("queue listen")
}

// AppendQueueUnlisten appends a QueueUnlisten frame: the end of the
// membership sid.
func AppendQueueUnlisten(dst []byte, sid uint32) []byte {
	dst = AppendHeader(dst, TypeQueueUnlisten, 4)
	return binary.BigEndian.AppendUint32(dst, sid)
}

// ParseQueueUnlisten decodes a QueueUnlisten payload.
func ParseQueueUnlisten(p []byte) (sid uint32, err error) {
	d := decoder{b: p}
	sid = d.u32("sid")
	return sid, d.done("queue unlisten")
}

// QueueMsgOverhead is what a QueueMsg frame adds to the frame it wraps:
// the sid (the wrapped frame's length prefix is not repeated).
const QueueMsgOverhead = 4

// AppendQueueMsg appends a QueueMsg frame: the whole Msg or Call frame
// inner (length prefix included), delivered to the membership sid. The
// wrapped frame's type byte and payload follow the sid unchanged, so
// routing copies them without decoding.
func AppendQueueMsg(dst []byte, sid uint32, inner []byte) []byte {
	return AppendQueueBody(dst, sid, inner[LenSize:])
}

// AppendQueueBody is AppendQueueMsg for a wrapped frame without its
// length prefix: body is its type byte and payload, as SplitQueueMsg
// returns them.
func AppendQueueBody(dst []byte, sid uint32, body []byte) []byte {
	dst = AppendHeader(dst, TypeQueueMsg, QueueMsgOverhead+len(body))
	dst = binary.BigEndian.AppendUint32(dst, sid)
	return append(dst, body...)
}

// AppendQueueOf is AppendQueueBody for a wrapped frame of type typ
// (TypeMsg or TypeCall) and payload p, wherever they are: the Msg of a
// SeqMsg, say, is its payload without the stream and number.
func AppendQueueOf(dst []byte, sid uint32, typ byte, p []byte) []byte {
	dst = AppendHeader(dst, TypeQueueMsg, QueueMsgOverhead+1+len(p))
	dst = binary.BigEndian.AppendUint32(dst, sid)
	dst = append(dst, typ)
	return append(dst, p...)
}

// SplitQueueMsg cuts a QueueMsg payload without decoding the frame it
// wraps: the membership sid and body, the wrapped frame's type byte and
// payload (aliasing p). ok is false if p is shorter than the sid.
func SplitQueueMsg(p []byte) (sid uint32, body []byte, ok bool) {
	if len(p) < QueueMsgOverhead {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(p), p[QueueMsgOverhead:], true
}

// ParseQueueMsg decodes a QueueMsg payload: the membership it is for, the
// wrapped frame's type (TypeMsg or TypeCall) and that frame's payload,
// which aliases p; decode it with ParseMsg or ParseCall.
func ParseQueueMsg(p []byte) (sid uint32, typ byte, inner []byte, err error) {
	if len(p) > QueueMsgOverhead && (p[QueueMsgOverhead] == TypeMsg || p[QueueMsgOverhead] == TypeCall) {
		return binary.BigEndian.Uint32(p), p[QueueMsgOverhead], p[QueueMsgOverhead+1:], nil
	}
	d := decoder{b: p}
	sid = d.u32("sid")
	typ = d.u8("type")
	if d.err == nil {
		inner = d.b
		d.b = nil
		if typ != TypeMsg && typ != TypeCall {
			d.err = fmt.Errorf("%w: wraps a %s frame, want msg or call", ErrBadInner, TypeName(typ))
		}
	}
	return sid, typ, inner, d.done("queue msg")
}

// appendMsgFields appends the payload of a Msg frame: flags, origin, event
// and data.
func appendMsgFields(dst []byte, m *Msg) []byte {
	dst = append(dst, m.Flags)
	dst = appendStr8(dst, m.Channel)
	dst = appendStr8(dst, m.Agent)
	dst = appendStr8(dst, m.Node)
	dst = appendStr16(dst, m.Event)
	return append(dst, m.Data...)
}

// msgFields decodes the fields of a Msg payload, the data being the rest.
func (d *decoder) msgFields() MsgView {
	if d.err == nil {
		if v, ok := splitMsgFields(d.b); ok {
			d.b = nil
			return v
		}
	}
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
	return v
}

// splitMsgFields is msgFields for a well-formed payload, in one pass over
// offsets: the receive path of every message calls it. ok is false if p
// is truncated; the decoder then finds which field, for the error.
func splitMsgFields(p []byte) (v MsgView, ok bool) {
	// Each check covers a field's bytes and the length prefix after it.
	if len(p) < 2 {
		return v, false
	}
	i := 2
	n := int(p[1])
	if len(p)-i < n+1 {
		return v, false
	}
	channel := p[i : i+n : i+n]
	i += n
	n = int(p[i])
	i++
	if len(p)-i < n+1 {
		return v, false
	}
	agent := p[i : i+n : i+n]
	i += n
	n = int(p[i])
	i++
	if len(p)-i < n+2 {
		return v, false
	}
	node := p[i : i+n : i+n]
	i += n
	n = int(binary.BigEndian.Uint16(p[i:]))
	i += 2
	if len(p)-i < n {
		return v, false
	}
	return MsgView{
		Flags: p[0], Channel: channel, Agent: agent, Node: node,
		Event: p[i : i+n : i+n], Data: p[i+n:],
	}, true
}
