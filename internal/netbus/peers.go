package netbus

import (
	"net/netip"
	"time"
)

// peer is one remote node as the Bus knows it: its identity and session,
// its replay windows and its stream. The loop goroutine owns it; mu
// guards it against Stats.
//
// A peer costs little (peerCost) until it proves itself: until then it has
// no replay windows and no stream, only the latest heartbeat, and
// heartbeats cannot make it hold gaps or send NAKs. It is proven by its
// first accepted data datagram (it gets a stream) or by a NAK addressed to
// this node's session (a listener that only asks for retransmissions).
type peer struct {
	pub       Peer
	epoch     uint64
	lastSeen  time.Time
	stallSeen time.Duration // the Bus's stalled time at lastSeen
	ctrlTop   uint64        // unproven: the highest control sequence accepted
	beat      beatBody      // without a stream: the latest heartbeat, applied when one starts
	beatOK    bool          // beat is set
	from      uint64        // without a stream: where it would start (from the first heartbeat)
	fromMsg   uint64        // the message number expected at from
	fromMsgOK bool          // fromMsg is known
	nakAt     time.Time     // without a stream: when it was last NAKed
	timely    bool          // a timed heartbeat of this session came since we started
	early     uint64        // the lowest data sequence refused before timely (0: none)
	earlyAt   time.Time     // when it came
	w         *peerWindows  // replay windows; nil until proven
	s         *stream       // nil until its first data datagram
	carry     streamStats   // counts of earlier sessions, for its next stream
	st        PeerStats     // the Bus's counters: Datagrams, Duplicates, NaksSent, Restarts
	ackNext   uint64        // the stream position last acked
	ackAt     time.Time     // when it was last acked
}

// peerWindows are a proven peer's replay windows, data and control.
type peerWindows struct{ data, ctrl replayWindow }

func (b *Bus) newPeer(id NodeID, epoch uint64, src netip.AddrPort) *peer {
	b.env.peers++
	// lastSeen starts now: a peer whose first datagrams are refused
	// (unfresh) keeps what it learned until PeerTimeout.
	return &peer{pub: Peer{ID: id, Addr: src}, epoch: epoch, lastSeen: time.Now(), stallSeen: b.stalled}
}

// prove gives p replay windows, if the memory bound allows (else the
// datagram is refused, counted). mu is held.
func (b *Bus) prove(p *peer) bool {
	if p.w != nil {
		return true
	}
	if !b.env.fits(provenCost) {
		b.rejected[ReasonMemory]++
		return false
	}
	p.w = &peerWindows{}
	p.w.ctrl.accept(p.ctrlTop) // what was accepted unproven stays refused
	b.env.proven++
	return true
}

// startStream gives a proven peer its stream, and applies the heartbeat
// it kept. mu is held.
func (b *Bus) startStream(p *peer, now time.Time) {
	s := newStream(&b.env, &p.pub, p.epoch)
	s.st = p.carry
	p.s = &s
	if p.beatOK {
		s.start(p.from)
		if !s.msgKnown && p.fromMsgOK {
			s.msgKnown, s.nextMsg = true, p.fromMsg
		}
		s.onBeat(&p.beat, now)
		if !p.nakAt.IsZero() { // onBeatUnproven NAKed them already
			for i := range s.gaps.rs {
				s.gaps.rs[i].naks, s.gaps.rs[i].tries, s.gaps.rs[i].lastNak = 1, 1, p.nakAt
			}
		}
	}
}

// onBeatUnproven keeps the heartbeat of a peer without a stream, and
// when it announces data we have not seen, NAKs it (the answer proves
// it). Those NAKs are rate-limited: once per NakInterval per peer, at
// most unprovenNaks per tick in all, each for at most maxNakResend
// sequences; they leave no state behind. mu is held.
func (b *Bus) onBeatUnproven(p *peer, hb *beatBody, now time.Time) {
	if !p.beatOK {
		p.from, p.fromMsg, p.fromMsgOK = hb.LastSeq+1, hb.NextMsg, true
		if b.env.young(p.epoch) {
			p.from, p.fromMsg = 1, 0
		}
		// Data that came just before the first timely heartbeat were
		// sent to us: follow from the earliest of them, within a bound
		// (a replay of older recorded data must not pull the start back).
		if p.early != 0 && p.early < p.from && p.from-p.early <= maxNakResend && now.Sub(p.earlyAt) <= 10*b.cfg.HeartbeatInterval {
			p.from, p.fromMsgOK = p.early, false
		}
	}
	if !p.beatOK || hb.LastSeq >= p.beat.LastSeq {
		p.beat, p.beatOK = *hb, true
	}
	first, last := max(p.from, hb.Oldest), hb.LastSeq
	if last >= maxNakResend {
		first = max(first, last-maxNakResend+1)
	}
	if first > last || now.Sub(p.nakAt) < b.cfg.NakInterval || b.unprovenNaks <= 0 || (!p.timely && b.keys.Load() != nil) {
		return
	}
	b.unprovenNaks--
	p.nakAt = now
	b.sendNaks(p, []seqRange{{first, last}})
}

// unprovenNaks is how many NAKs a tick may send to unproven peers.
const unprovenNaks = 4

// unprove drops p's windows and stream (restart, forget). mu is held.
func (b *Bus) unprove(p *peer, now time.Time) {
	if p.s != nil {
		p.s.end(now)
		p.carry = p.s.st
		p.s = nil
	}
	if p.w != nil {
		p.w = nil
		b.env.proven--
	}
}

// streams yields the stream of every peer that has one: streamEnv.all.
func (b *Bus) streams(yield func(*stream) bool) {
	for _, p := range b.peers {
		if p.s != nil && !yield(p.s) {
			return
		}
	}
}

// admit returns the peer h comes from: a known one, a new one (or a
// forgotten one come back), or a known one in a new session. It returns
// nil, counted, for an earlier session or one node too many. mu is held.
func (b *Bus) admit(h header, src netip.AddrPort, now time.Time) *peer {
	p := b.peers[h.Node]
	switch {
	case p == nil:
		return b.join(h, src)
	case h.Epoch < p.epoch:
		b.rejected[ReasonStaleEpoch]++
		return nil
	case h.Epoch > p.epoch && b.keys.Load() == nil && src != p.pub.Addr && b.silence(p, now) < b.heartbeatTimeout():
		// Plaintext: anyone can claim a node id. A new session is taken
		// from the address the node used, or once the old one went
		// silent; otherwise it is an attempt to silence the node.
		b.rejected[ReasonTakeover]++
		return nil
	case h.Epoch > p.epoch:
		b.log.Info("netbus: peer restarted", "node", h.Node, "name", p.pub.Name, "addr", src)
		b.restart(p, h.Epoch, src, now)
	}
	return p
}

// heartbeatTimeout is how long a session must be silent before, without
// keys, a new session of its node is accepted from another address.
func (b *Bus) heartbeatTimeout() time.Duration { return 5 * b.cfg.HeartbeatInterval }

// silence is how long p has been silent while this Bus was listening:
// the time since its last datagram, less the time the loop stalled
// since. A receiver that did not run for a second (blocked, starved) has
// not heard a live node's heartbeats of that second yet, and a takeover
// queued before them must not find the node silent. mu is held.
func (b *Bus) silence(p *peer, now time.Time) time.Duration {
	return now.Sub(p.lastSeen) - (b.stalled - p.stallSeen)
}

// join adds the peer of a node not in the table. mu is held.
func (b *Bus) join(h header, src netip.AddrPort) *peer {
	g := b.gone[h.Node]
	if g != nil && h.Epoch < g.epoch {
		b.rejected[ReasonStaleEpoch]++
		return nil
	}
	if len(b.peers) >= b.cfg.MaxPeers {
		b.rejected[ReasonPeerLimit]++
		return nil
	}
	if !b.env.fits(peerCost) {
		b.rejected[ReasonMemory]++
		return nil
	}
	p := b.newPeer(h.Node, h.Epoch, src)
	if g != nil && h.Epoch == g.epoch && b.prove(p) {
		// The session we forgot came back (a partition longer than
		// PeerTimeout, or a replay): carry on where it ended, with its
		// replay windows.
		*p.w = g.w
		s := newStream(&b.env, &p.pub, p.epoch)
		s.resume(g.next)
		p.s = &s
	}
	if g != nil {
		delete(b.gone, h.Node)
		b.env.gone--
	}
	b.peers[h.Node] = p
	b.log.Info("netbus: peer joined", "node", h.Node, "addr", src)
	return p
}

// restart ends p's session and starts its new one, keeping the counters.
func (b *Bus) restart(p *peer, epoch uint64, src netip.AddrPort, now time.Time) {
	b.unprove(p, now)
	p.pub = Peer{ID: p.pub.ID, Addr: src}
	p.epoch, p.lastSeen = epoch, time.Time{}
	p.ctrlTop, p.beat, p.beatOK, p.from, p.fromMsg, p.nakAt, p.timely = 0, beatBody{}, false, 0, 0, time.Time{}, false
	p.early, p.earlyAt, p.fromMsgOK = 0, time.Time{}, false
	p.ackNext, p.ackAt = 0, time.Time{}
	p.st.Restarts++
}

// tick sends NAKs and heartbeats, gives up gaps, expires partial messages
// and peers. mu is held.
func (b *Bus) tick(now time.Time) {
	b.unprovenNaks = unprovenNaks
	for id, p := range b.peers {
		if now.Sub(p.lastSeen) > b.cfg.PeerTimeout {
			if p.s != nil {
				p.s.end(now)
			}
			b.forget(p, now)
			b.unprove(p, now)
			delete(b.peers, id)
			b.env.peers--
			b.log.Info("netbus: peer gone", "node", id, "name", p.pub.Name, "addr", p.pub.Addr)
			continue
		}
		if p.s != nil {
			b.sendNaks(p, p.s.dueNaks(now, false))
			p.s.expire(now)
			b.queueAck(p, now)
		}
	}
	if now.Sub(b.lastBeat) >= b.cfg.HeartbeatInterval {
		b.queueBeat(netip.AddrPort{}, now)
	}
	if b.rejected != b.rejLogged && now.Sub(b.rejLogAt) >= rejLogInterval {
		b.reportRejected(now)
	}
	b.smu.Lock()
	b.hist.trim(b.cfg.History, now.Add(-b.cfg.HistoryAge), b.ackFloor())
	b.smu.Unlock()
}

// nakUrgent NAKs, right after a batch instead of at the next tick, for
// peers whose reorder span passed a quarter of the window. mu is held.
func (b *Bus) nakUrgent(now time.Time) {
	for _, p := range b.peers {
		if p.s != nil && p.s.urgent() {
			b.sendNaks(p, p.s.dueNaks(now, true))
		}
	}
}

// sendNaks queues NAK datagrams to p for ranges, as many ranges in each
// as the payload holds. mu is held.
func (b *Bus) sendNaks(p *peer, ranges []seqRange) {
	per := (b.cfg.Payload - headerLen - tagLen - nakBodyFixed) / nakRangeLen
	for len(ranges) > 0 {
		n := min(per, len(ranges))
		nb := nakBody{Target: p.pub.ID, TargetEpoch: p.epoch, Ranges: ranges[:n]}
		b.wout = append(b.wout, Packet{Data: b.sealCtrl(kindNak, appendNak(nil, &nb)), Addr: p.pub.Addr})
		p.st.NaksSent++
		ranges = ranges[n:]
	}
}

// goneSession is what a Bus keeps of a forgotten peer's session: enough to
// refuse its datagrams replayed later, and to resume it if it comes back.
type goneSession struct {
	epoch uint64
	next  uint64 // the data sequence expected next
	w     peerWindows
	at    time.Time
}

// goneKeep is how long a forgotten session is remembered. A recording
// replayed later is refused only by the epoch rule against a newer session
// of the same node, and not at all once that is forgotten too.
const goneKeep = time.Hour

// forget remembers the session of a proven peer being dropped for
// silence, at most MaxPeers of them, dropping those older than goneKeep
// first and then the oldest. mu is held.
func (b *Bus) forget(p *peer, now time.Time) {
	if p.w == nil {
		return // nothing accepted from it that a replay could repeat
	}
	if len(b.gone) >= b.cfg.MaxPeers || !b.env.fits(goneCost) {
		var oldest NodeID
		var oldestAt time.Time
		for id, g := range b.gone {
			if now.Sub(g.at) > goneKeep {
				delete(b.gone, id)
				b.env.gone--
				continue
			}
			if oldestAt.IsZero() || g.at.Before(oldestAt) {
				oldest, oldestAt = id, g.at
			}
		}
		if !oldestAt.IsZero() && (len(b.gone) >= b.cfg.MaxPeers || !b.env.fits(goneCost)) {
			delete(b.gone, oldest)
			b.env.gone--
		}
	}
	if _, ok := b.gone[p.pub.ID]; !ok && !b.env.fits(goneCost) {
		return
	}
	next := p.w.data.top + 1
	if p.s != nil && p.s.started {
		next = p.s.next
	}
	if _, ok := b.gone[p.pub.ID]; !ok {
		b.env.gone++
	}
	b.gone[p.pub.ID] = &goneSession{epoch: p.epoch, next: next, w: *p.w, at: now}
}
