package netbus

import (
	"net/netip"
	"time"
)

// peer is one remote node as the Bus knows it: its identity and session,
// its replay windows and its stream. The loop goroutine owns it; mu
// guards it against Stats.
type peer struct {
	pub      Peer
	epoch    uint64
	lastSeen time.Time
	data     replayWindow
	ctrl     replayWindow
	s        stream
	st       PeerStats // the Bus's counters: Datagrams, Duplicates, NaksSent, Restarts
}

func (b *Bus) newPeer(id NodeID, epoch uint64, src netip.AddrPort) *peer {
	p := &peer{pub: Peer{ID: id, Addr: src}, epoch: epoch}
	p.s = newStream(&b.env, &p.pub, epoch)
	return p
}

// streams yields the stream of every peer: streamEnv.all.
func (b *Bus) streams(yield func(*stream) bool) {
	for _, p := range b.peers {
		if !yield(&p.s) {
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
	case h.Epoch > p.epoch:
		b.log.Info("netbus: peer restarted", "node", h.Node, "name", p.pub.Name, "addr", src)
		b.restart(p, h.Epoch, src, now)
	}
	return p
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
	p := b.newPeer(h.Node, h.Epoch, src)
	if g != nil && h.Epoch == g.epoch {
		// The session we forgot came back (a partition longer than
		// PeerTimeout, or a replay): carry on where it ended, with its
		// replay windows.
		p.data, p.ctrl = g.data, g.ctrl
		p.s.resume(g.next)
	}
	delete(b.gone, h.Node)
	b.peers[h.Node] = p
	b.log.Info("netbus: peer joined", "node", h.Node, "addr", src)
	return p
}

// restart ends p's session and starts its new one, keeping the counters.
func (b *Bus) restart(p *peer, epoch uint64, src netip.AddrPort, now time.Time) {
	p.s.end(now)
	counts := p.s.st
	p.pub = Peer{ID: p.pub.ID, Addr: src}
	p.epoch, p.lastSeen = epoch, time.Time{}
	p.data, p.ctrl = replayWindow{}, replayWindow{}
	p.s = newStream(&b.env, &p.pub, epoch)
	p.s.st = counts
	p.st.Restarts++
}

// tick sends NAKs and heartbeats, gives up gaps, expires partial messages
// and peers. mu is held.
func (b *Bus) tick(now time.Time) {
	for id, p := range b.peers {
		if now.Sub(p.lastSeen) > b.cfg.PeerTimeout {
			p.s.end(now)
			b.forget(p, now)
			delete(b.peers, id)
			b.log.Info("netbus: peer gone", "node", id, "name", p.pub.Name, "addr", p.pub.Addr)
			continue
		}
		b.sendNaks(p, p.s.dueNaks(now, false))
		p.s.expire(now)
	}
	if now.Sub(b.lastBeat) >= b.cfg.HeartbeatInterval {
		b.queueBeat(netip.AddrPort{}, now)
	}
	if b.rejected != b.rejLogged && now.Sub(b.rejLogAt) >= rejLogInterval {
		b.reportRejected(now)
	}
	b.smu.Lock()
	b.hist.trim(b.cfg.History, now.Add(-b.cfg.HistoryAge))
	b.smu.Unlock()
}

// nakUrgent NAKs, right after a batch instead of at the next tick, for
// peers whose reorder span passed a quarter of the window. mu is held.
func (b *Bus) nakUrgent(now time.Time) {
	for _, p := range b.peers {
		if p.s.urgent() {
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
	epoch      uint64
	next       uint64 // the data sequence expected next
	data, ctrl replayWindow
	at         time.Time
}

// goneKeep is how long a forgotten session is remembered. A recording
// replayed later is refused only by the epoch rule against a newer session
// of the same node, and not at all once that is forgotten too.
const goneKeep = time.Hour

// forget remembers the session of a peer being dropped for silence, at
// most MaxPeers of them, dropping those older than goneKeep first and
// then the oldest. mu is held.
func (b *Bus) forget(p *peer, now time.Time) {
	if len(b.gone) >= b.cfg.MaxPeers {
		var oldest NodeID
		var oldestAt time.Time
		for id, g := range b.gone {
			if now.Sub(g.at) > goneKeep {
				delete(b.gone, id)
				continue
			}
			if oldestAt.IsZero() || g.at.Before(oldestAt) {
				oldest, oldestAt = id, g.at
			}
		}
		if len(b.gone) >= b.cfg.MaxPeers {
			delete(b.gone, oldest)
		}
	}
	next := p.s.next
	if !p.s.started {
		next = p.data.top + 1
	}
	b.gone[p.pub.ID] = &goneSession{epoch: p.epoch, next: next, data: p.data, ctrl: p.ctrl, at: now}
}
