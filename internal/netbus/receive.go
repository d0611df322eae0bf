package netbus

import (
	"errors"
	"net/netip"
	"time"
)

// The receive path of a Bus: handlePacket checks each datagram and hands
// it to the stream of the peer it comes from (stream.go); peers.go keeps
// the peer table and ticks it.

// rejLogInterval is the least time between two reports of refused
// datagrams: the first is logged at once, a flood adds a line per interval.
const rejLogInterval = 5 * time.Second

// handlePacket runs one received datagram through the checks, in this
// order: header, own echo, AEAD, body (check); peer/epoch (admit);
// freshness of its session and proof of its peer (gate); replay window
// (fresh). Then it hands the datagram to the peer's stream (data,
// heartbeats) or the sender (NAKs, acks) (dispatch), and records it
// (settle). mu is held.
func (b *Bus) handlePacket(data []byte, src netip.AddrPort, now time.Time) {
	var d inbound
	if !b.check(&d, data, now) {
		return
	}
	p := b.admit(d.h, src, now)
	if p == nil || !b.gate(p, &d, now) || !b.fresh(p, d.h) || !b.dispatch(p, &d, src, now) {
		return
	}
	b.settle(p, d.h, src, now)
}

// inbound is a received datagram that passed check: its header, its
// opened body, and the body decoded for its kind.
type inbound struct {
	h      header
	body   []byte
	sealed bool
	nak    nakBody
	beat   beatBody
	ack    ackBody
}

// check decodes and opens data into d, refusing (counted) what is not a
// valid datagram for us, our own echo, and timed heartbeats that are not
// timely. It touches no peer state. mu is held.
func (b *Bus) check(d *inbound, data []byte, now time.Time) bool {
	h, err := decodeHeader(data)
	if err != nil {
		b.rejected[reasonOf(err)]++
		return false
	}
	if h.Node == b.id {
		b.echoes++
		return false
	}
	_, body, err := b.keys.Load().openCached(data, &b.ocache)
	if err != nil {
		b.rejected[reasonOf(err)]++
		return false
	}
	// Validate the body before it can touch any state.
	d.nak, d.beat, d.ack, err = decodeBody(h.Kind, body)
	if err != nil {
		b.rejected[ReasonMalformed]++
		return false
	}
	if h.Kind == kindTimedBeat && !b.timely(d.beat.Time, now) {
		b.rejected[ReasonStaleTime]++
		return false
	}
	d.h, d.body, d.sealed = h, body, h.Flags&flagSealed != 0
	return true
}

// gate marks p's session timely on a timed heartbeat, and lets data
// through only from a fresh session (sealed: one with a timed heartbeat
// since we started; refused as unfresh otherwise, remembered to follow
// from) and a proven peer (within the memory bound). mu is held.
func (b *Bus) gate(p *peer, d *inbound, now time.Time) bool {
	if d.h.Kind == kindTimedBeat {
		p.timely = true
	}
	if !isDataKind(d.h.Kind) {
		return true
	}
	if d.sealed && !p.timely {
		// No timed heartbeat of this session since we started: a
		// recording, or a session we will follow from its next
		// heartbeat (what was refused is then NAKed).
		b.rejected[ReasonUnfresh]++
		if p.early == 0 || d.h.Seq < p.early {
			p.early, p.earlyAt = d.h.Seq, now
		}
		return false
	}
	return b.prove(p)
}

// dispatch hands a datagram that passed the checks to its consumer: data
// to p's stream (false if the memory bound refused it), NAKs and acks to
// the sender (proving p when they are for us), heartbeats to p's stream
// or, without one, to p itself. mu is held.
func (b *Bus) dispatch(p *peer, d *inbound, src netip.AddrPort, now time.Time) bool {
	switch d.h.Kind {
	case kindData, kindFrag:
		return b.dataIn(p, d, now)
	case kindNak:
		if b.handleNak(src, &d.nak, now) && (p.timely || !d.sealed) {
			b.prove(p)
		}
	case kindAck:
		if b.handleAck(d.h.Node, &d.ack, now) && (p.timely || !d.sealed) {
			b.prove(p)
		}
	case kindHeartbeat, kindTimedBeat:
		if p.pub.Name != d.beat.Name {
			p.pub.Name = d.beat.Name
		}
		if p.s != nil {
			p.s.onBeat(&d.beat, now)
		} else {
			b.onBeatUnproven(p, &d.beat, now)
		}
	}
	return true
}

// dataIn puts a data datagram into p's stream, starting it on p's first;
// false if the memory bound refused it (counted). mu is held.
func (b *Bus) dataIn(p *peer, d *inbound, now time.Time) bool {
	if p.s == nil {
		b.startStream(p, now)
	}
	if !p.s.onData(d.h, d.body, now) {
		b.rejected[ReasonMemory] += b.env.refused
		b.env.refused = 0
		return false
	}
	p.st.Datagrams++
	if p.s.next-p.ackNext >= ackEvery {
		b.queueAck(p, now)
	}
	return true
}

// settle records a datagram p's stream or the sender took: its sequence
// in the replay window, p's last sight and address, the tail it
// announced, and what the memory bound refused meanwhile. mu is held.
func (b *Bus) settle(p *peer, h header, src netip.AddrPort, now time.Time) {
	b.accept(p, h)
	p.lastSeen, p.stallSeen = now, b.stalled
	if p.pub.Addr != src {
		p.pub.Addr = src
	}
	if p.s != nil {
		p.s.tailAccount()
	}
	if b.env.refused > 0 {
		b.rejected[ReasonMemory] += b.env.refused
		b.env.refused = 0
	}
}

// timely reports whether a heartbeat sent at t (the sender's clock) is
// live: sent no earlier than this Bus started, and within MaxClockSkew
// of now. A
// recording made before a restart fails the first test whatever its age.
func (b *Bus) timely(t uint64, now time.Time) bool {
	d := time.Duration(int64(t) - now.UnixNano())
	return int64(t) >= b.started && d <= b.cfg.MaxClockSkew && d >= -b.cfg.MaxClockSkew
}

// decodeBody checks an opened body of the given kind; NAK and heartbeat
// bodies are returned decoded.
func decodeBody(kind uint8, body []byte) (nak nakBody, beat beatBody, ack ackBody, err error) {
	switch kind {
	case kindData:
		_, err = forEachRecord(body, nil)
	case kindFrag:
		_, err = decodeFrag(body)
	case kindNak:
		nak, err = decodeNak(body)
	case kindHeartbeat, kindTimedBeat:
		beat, err = decodeBeat(kind, body)
	case kindAck:
		ack, err = decodeAck(body)
	}
	return nak, beat, ack, err
}

// fresh checks h's sequence against p's replay window for its kind; a
// duplicate or a replay is refused (counted). An unproven peer has no
// windows: its control sequences must only grow. mu is held.
func (b *Bus) fresh(p *peer, h header) bool {
	if p.w == nil {
		if h.Seq&^ctrlBit <= p.ctrlTop {
			b.rejected[ReasonReplay]++
			return false
		}
		return true
	}
	win, seq := &p.w.data, h.Seq
	if !isDataKind(h.Kind) {
		win, seq = &p.w.ctrl, h.Seq&^ctrlBit
	}
	switch win.check(seq) {
	case replaySeen:
		b.rejected[ReasonDuplicate]++
		p.st.Duplicates++
		return false
	case replayOld:
		b.rejected[ReasonReplay]++
		return false
	}
	return true
}

// accept records h's sequence in p's replay window, once fresh said yes
// and the datagram was taken. mu is held.
func (b *Bus) accept(p *peer, h header) {
	switch {
	case p.w == nil:
		p.ctrlTop = h.Seq &^ ctrlBit
	case isDataKind(h.Kind):
		p.w.data.accept(h.Seq)
	default:
		p.w.ctrl.accept(h.Seq &^ ctrlBit)
	}
}

// reasonOf classifies an error from decodeHeader or openDatagram.
func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, errTruncated):
		return ReasonTruncated
	case errors.Is(err, errBadMagic):
		return ReasonBadMagic
	case errors.Is(err, errBadVersion):
		return ReasonBadVersion
	case errors.Is(err, errPlaintext):
		return ReasonPlaintext
	case errors.Is(err, errNoKeys):
		return ReasonNoKeys
	case errors.Is(err, errUnknownKey):
		return ReasonUnknownKey
	case errors.Is(err, errAuth):
		return ReasonAuth
	}
	return ReasonMalformed
}

// reportRejected logs the datagrams refused since the last report, by
// reason, with a hint for key problems. mu is held.
func (b *Bus) reportRejected(now time.Time) {
	args := make([]any, 0, 8)
	keys := false
	for r := range numReasons {
		if d := b.rejected[r] - b.rejLogged[r]; d > 0 {
			args = append(args, Reason(r).String(), d)
			switch Reason(r) {
			case ReasonAuth, ReasonUnknownKey, ReasonPlaintext, ReasonNoKeys:
				keys = true
			}
		}
	}
	b.rejLogged, b.rejLogAt = b.rejected, now
	msg := "netbus: datagrams refused"
	if keys {
		msg += " (key mismatch: check that every node shares a key)"
	}
	b.log.Warn(msg, args...)
}
