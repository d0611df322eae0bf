package netcluster

import "github.com/netcluster/netcluster/internal/wire"

// A sender's stream repeats its header: the flags, channel, agent, node
// and event of one message (SeqMsg, Msg, or Msg in a QueueMsg) are most
// often those of the one before, byte for byte. The reader remembers the
// last header it made a Message of, and a message that starts with it
// needs neither the fields split nor each name compared with the last:
// one comparison gives them all.

// maxSeqHeader bounds the header remembered (a long event name is rare).
const maxSeqHeader = 512

// recvSeq decodes a SeqMsg payload into a Message from alloc if it is new
// (see origins.fresh), else m is nil; gap is the notice of an earlier
// stream of its origin, to be handled before m.
func (a *Agent) recvSeq(alloc *recvAlloc, p []byte) (m *Message, gap *GapError, err error) {
	stream, seq, v, same, err := alloc.parseSeq(p)
	if err != nil {
		return nil, nil, err
	}
	channel, agent := v.Channel, v.Agent
	if same {
		channel, agent = unsafeBytes(alloc.last[fieldChannel]), unsafeBytes(alloc.last[fieldAgent])
	}
	ok, gap := a.seen.fresh(channel, agent, stream, seq)
	if !ok {
		return nil, gap, nil
	}
	if same {
		return alloc.again(&v), gap, nil
	}
	return alloc.seqView(p, &v), gap, nil
}

// parseSeq decodes a SeqMsg payload as wire.ParseSeqMsg does. same
// reports that its header is the one remembered (see sameHeader).
func (r *recvAlloc) parseSeq(p []byte) (stream uint32, seq uint64, v wire.MsgView, same bool, err error) {
	if stream, seq, ok := wire.SeqOf(p); ok && seq != 0 {
		if v, same = r.sameHeader(p[wire.SeqMsgOverhead:]); same {
			return stream, seq, v, true, nil
		}
	}
	stream, seq, v, err = wire.ParseSeqMsg(p)
	return stream, seq, v, false, err
}

// seqView is fields for a SeqMsg payload p that parseSeq decoded.
func (r *recvAlloc) seqView(p []byte, v *wire.MsgView) *Message {
	return r.fields(p[wire.SeqMsgOverhead:], v, false)
}

// sameHeader reports whether body, a Msg's fields (a Msg payload, or a
// SeqMsg's after its numbers), starts with the header remembered: v then
// holds only its flags and data, and its other fields are last's. (A
// header gives each field's length before its bytes, so a body that
// starts with one has its fields.)
func (r *recvAlloc) sameHeader(body []byte) (v wire.MsgView, same bool) {
	h := r.hdr
	if len(h) == 0 || len(body) < len(h) || string(body[:len(h)]) != string(h) {
		return v, false
	}
	v.Flags, v.Data = h[0], body[len(h):]
	return v, true
}

// fields makes the Message of body's fields v: again's if same (see
// sameHeader), else view's, and then body's header is remembered.
func (r *recvAlloc) fields(body []byte, v *wire.MsgView, same bool) *Message {
	if same {
		return r.again(v)
	}
	m := r.view(v)
	// The fields precede the data, which runs to the end of body.
	if n := len(body) - len(v.Data); n > 0 && n <= maxSeqHeader {
		r.hdr = append(r.hdr[:0], body[:n]...)
	}
	return m
}

// again makes a Message of the remembered header's fields (those of the
// last Message view made) and v's data.
func (r *recvAlloc) again(v *wire.MsgView) *Message {
	m := r.message()
	m.Event = r.last[fieldEvent]
	m.Data = r.bytes(v.Data)
	m.JSON = v.Flags&wire.FlagJSON != 0
	m.Channel = r.last[fieldChannel]
	m.Agent = r.last[fieldAgent]
	if node := r.last[fieldNode]; node != "" {
		m.Node = node // (the slab is zeroed: no write barrier for "")
	}
	return m
}
