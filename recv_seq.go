package netcluster

import "github.com/netcluster/netcluster/internal/wire"

// A sender's stream repeats its header: the flags, channel, agent, node
// and event of one SeqMsg are most often those of the one before, byte
// for byte. The reader remembers the last header it made a Message of,
// and a SeqMsg that starts with it needs neither the fields split nor
// each name compared with the last: one comparison gives them all.

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
// reports that its header is the one remembered (see again): v then holds
// only the flags and the data.
func (r *recvAlloc) parseSeq(p []byte) (stream uint32, seq uint64, v wire.MsgView, same bool, err error) {
	if h := r.hdr; len(h) > 0 && len(p) >= wire.SeqMsgOverhead+len(h) {
		body := p[wire.SeqMsgOverhead:]
		if string(body[:len(h)]) == string(h) {
			if stream, seq, _ = wire.SeqOf(p); seq != 0 {
				v.Flags, v.Data = h[0], body[len(h):]
				return stream, seq, v, true, nil
			}
		}
	}
	stream, seq, v, err = wire.ParseSeqMsg(p)
	return stream, seq, v, false, err
}

// seqView is view for a SeqMsg payload p that parseSeq decoded into v:
// it remembers p's header, which is v's fields (view forgets the last).
func (r *recvAlloc) seqView(p []byte, v *wire.MsgView) *Message {
	m := r.view(v)
	// The fields precede the data, which runs to the end of p.
	if n := len(p) - wire.SeqMsgOverhead - len(v.Data); n > 0 && n <= maxSeqHeader {
		r.hdr = append(r.hdr[:0], p[wire.SeqMsgOverhead:wire.SeqMsgOverhead+n]...)
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
	m.Node = r.last[fieldNode]
	return m
}
