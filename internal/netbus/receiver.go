package netbus

import (
	"errors"
	"net/netip"
	"slices"
	"time"
)

// peer is the receive state of one remote node's session. The loop
// goroutine owns it; mu guards it against Stats.
//
// Stream invariants: every data sequence below next was processed
// (delivered or given up); every sequence in [next, top] is either in
// pending (received, or marked lost) or in missing; top-next stays below
// replayWindowSize.
type peer struct {
	pub      Peer
	epoch    uint64
	lastSeen time.Time
	data     replayWindow
	ctrl     replayWindow

	started   bool
	next, top uint64
	pending   map[uint64]slot
	pendBytes int
	missing   map[uint64]*gap

	// Message accounting (message numbers from DATA/FRAG bodies).
	msgKnown  bool
	nextMsg   uint64
	part      *partial
	skipMsg   uint64 // fragments of this message are ignored (already counted lost)
	skipValid bool

	// Latest heartbeat.
	beatValid   bool
	beatLast    uint64
	beatNextMsg uint64
	oldest      uint64 // oldest sequence the sender can still retransmit

	// Loss reports: once per burst, at most one per lossLogInterval.
	burstOpen              bool
	lossDirty              bool
	lastLog                time.Time
	loggedDgrams, loggedMs uint64
	lossFirst, lossLast    uint64 // sequences given up since the last report

	st PeerStats // counters; Peer and the stream fields are filled in by Stats
}

// slot is a received (or given-up) data datagram waiting for its turn.
type slot struct {
	lost   bool
	kind   uint8
	fi, fc uint16
	body   []byte
}

type gap struct {
	since   time.Time
	lastNak time.Time
	naks    int
}

type partial struct {
	msg    uint64
	ch     string
	total  int
	count  uint16
	nextFi uint16
	buf    []byte
	since  time.Time
}

const lossLogInterval = time.Second

// rejLogInterval is the least time between two reports of refused
// datagrams: the first is logged at once, a flood adds a line per interval.
const rejLogInterval = 5 * time.Second

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

// handlePacket runs one received datagram through the checks, in this
// order: header, own echo, AEAD, peer/epoch, replay window, body; then
// hands it to the stream. mu is held.
func (b *Bus) handlePacket(data []byte, src netip.AddrPort, now time.Time) {
	h, err := decodeHeader(data)
	if err != nil {
		b.rejected[reasonOf(err)]++
		return
	}
	if h.Node == b.id {
		b.echoes++
		return
	}
	_, body, err := b.keys.Load().openDatagram(data)
	if err != nil {
		b.rejected[reasonOf(err)]++
		return
	}
	// Validate the body before it can touch any state.
	var nak nakBody
	var beat beatBody
	switch h.Kind {
	case kindData:
		_, err = forEachRecord(body, nil)
	case kindFrag:
		_, err = decodeFrag(body)
	case kindNak:
		nak, err = decodeNak(body)
	case kindHeartbeat:
		beat, err = decodeBeat(body)
	}
	if err != nil {
		b.rejected[ReasonMalformed]++
		return
	}
	p := b.peers[h.Node]
	switch {
	case p == nil:
		g := b.gone[h.Node]
		if g != nil && h.Epoch < g.epoch {
			b.rejected[ReasonStaleEpoch]++
			return
		}
		if len(b.peers) >= b.cfg.MaxPeers {
			b.rejected[ReasonPeerLimit]++
			return
		}
		p = b.newPeer(h.Node, h.Epoch, src)
		if g != nil && h.Epoch == g.epoch {
			// The session we forgot came back (a partition longer than
			// PeerTimeout, or a replay): carry on where it ended, with
			// its replay windows.
			p.data, p.ctrl = g.data, g.ctrl
			p.started, p.next, p.top = true, g.next, g.next-1
		}
		delete(b.gone, h.Node)
		b.peers[h.Node] = p
		b.log.Info("netbus: peer joined", "node", h.Node, "addr", src)
	case h.Epoch < p.epoch:
		b.rejected[ReasonStaleEpoch]++
		return
	case h.Epoch > p.epoch:
		b.log.Info("netbus: peer restarted", "node", h.Node, "name", p.pub.Name, "addr", src)
		b.endSession(p, now)
		st := p.st
		*p = *b.newPeer(h.Node, h.Epoch, src)
		p.st = st
		p.st.Restarts++
	}
	win, seq := &p.data, h.Seq
	if !isDataKind(h.Kind) {
		win, seq = &p.ctrl, h.Seq&^ctrlBit
	}
	switch win.check(seq) {
	case replaySeen:
		b.rejected[ReasonDuplicate]++
		p.st.Duplicates++
		return
	case replayOld:
		b.rejected[ReasonReplay]++
		return
	}
	win.accept(seq)
	p.lastSeen = now
	if p.pub.Addr != src {
		p.pub.Addr = src
	}
	switch h.Kind {
	case kindData, kindFrag:
		p.st.Datagrams++
		b.onData(p, h, body, now)
	case kindNak:
		b.handleNak(src, &nak, now)
	case kindHeartbeat:
		b.onBeat(p, &beat, now)
	}
	b.tailAccount(p)
}

func (b *Bus) newPeer(id NodeID, epoch uint64, src netip.AddrPort) *peer {
	return &peer{
		pub:     Peer{ID: id, Addr: src},
		epoch:   epoch,
		pending: map[uint64]slot{},
		missing: map[uint64]*gap{},
		oldest:  1,
	}
}

// startGrace is how much earlier than ours a peer's session may have
// begun and still be followed from its first datagram. Servers started
// together (a cluster booting, a test) begin within it, and a lost first
// datagram of theirs is then a gap to recover like any other, not a start.
const startGrace = 2 * time.Second

// start sets where a new session's stream begins. A peer whose session
// began no earlier than ours, or within startGrace before it, is followed
// from its first datagram: we were listening. One that was already running
// when we started is followed from what we first see of it; earlier
// messages are not ours to miss.
//
// Epochs come from each node's own clock, so the rule also asks that the
// stream be young (first within one replay window): a long-running peer
// whose clock runs ahead of ours is not replayed from its first datagram.
func (b *Bus) start(p *peer, first uint64) {
	if p.epoch+uint64(startGrace) >= b.epoch && first < replayWindowSize {
		first = 1
		p.msgKnown, p.nextMsg = true, 0
	}
	p.started = true
	p.next, p.top = first, first-1
}

// nakUrgent NAKs, right after a batch instead of at the next tick, for
// peers whose reorder span passed a quarter of the window. mu is held.
func (b *Bus) nakUrgent(now time.Time) {
	for _, p := range b.peers {
		if len(p.missing) > 0 && p.top-p.next >= replayWindowSize/4 {
			b.nakPeer(p, now, true)
		}
	}
}

// onData puts a data datagram into the stream. mu is held.
func (b *Bus) onData(p *peer, h header, body []byte, now time.Time) {
	s := h.Seq
	if !p.started {
		b.start(p, s-min(uint64(h.FragIndex), s-1))
	}
	if s < p.next {
		p.st.Late++
		return
	}
	// Keep the span below the replay window: give up what is too old.
	if s-p.next >= replayWindowSize-1 {
		b.skipTo(p, s-(replayWindowSize-2), now)
	}
	if s > p.top {
		for q := p.top + 1; q < s; q++ {
			p.missing[q] = &gap{since: now}
		}
		p.top = s
	} else if g := p.missing[s]; g != nil {
		delete(p.missing, s)
		if g.naks > 0 {
			p.st.Recovered++
		} else {
			p.st.Reordered++
		}
	}
	sl := slot{kind: h.Kind, fi: h.FragIndex, fc: h.FragCount, body: body}
	if s == p.next {
		b.process(p, s, sl, now)
		p.next++
		b.drain(p, now)
		return
	}
	sl.body = append([]byte(nil), body...) // the read buffer is reused
	p.pending[s] = sl
	p.pendBytes += len(sl.body)
	b.pendTotal += len(sl.body)
	for p.pendBytes > b.cfg.MaxPending && p.next <= p.top {
		b.skipTo(p, p.next+1, now)
	}
	for b.pendTotal > b.cfg.MaxPendingTotal {
		var big *peer
		for _, q := range b.peers {
			if big == nil || q.pendBytes > big.pendBytes {
				big = q
			}
		}
		if big == nil || big.pendBytes == 0 {
			break
		}
		b.skipTo(big, big.next+1, now)
	}
}

// drain processes pending slots from next on while they are contiguous.
func (b *Bus) drain(p *peer, now time.Time) {
	for {
		sl, ok := p.pending[p.next]
		if !ok {
			return
		}
		delete(p.pending, p.next)
		p.pendBytes -= len(sl.body)
		b.pendTotal -= len(sl.body)
		b.process(p, p.next, sl, now)
		p.next++
	}
}

// skipTo gives up every sequence below upto that has not arrived, and
// processes the rest in order.
func (b *Bus) skipTo(p *peer, upto uint64, now time.Time) {
	for p.next < upto {
		if sl, ok := p.pending[p.next]; ok {
			delete(p.pending, p.next)
			p.pendBytes -= len(sl.body)
			b.pendTotal -= len(sl.body)
			b.process(p, p.next, sl, now)
			p.next++
			continue
		}
		if p.next > p.top { // never heard of: give up the whole run at once
			b.lose(p, p.next, upto-p.next)
			p.next, p.top = upto, upto-1
			break
		}
		delete(p.missing, p.next)
		b.lose(p, p.next, 1)
		p.next++
	}
	b.drain(p, now)
}

// declareLost marks a missing sequence as given up; it is processed (as
// a loss) in its turn.
func (b *Bus) declareLost(p *peer, q uint64) {
	delete(p.missing, q)
	p.pending[q] = slot{lost: true}
}

// lose accounts n given-up datagrams from sequence first on.
func (b *Bus) lose(p *peer, first, n uint64) {
	p.st.LostDatagrams += n
	if !p.lossDirty {
		p.lossFirst = first
	}
	p.lossLast = first + n - 1
	p.burstOpen, p.lossDirty = true, true
	if p.part != nil { // fragments are consecutive: the lost one was its next
		b.dropPartial(p)
	}
}

// process handles one datagram (or loss) at the stream position.
func (b *Bus) process(p *peer, seq uint64, sl slot, now time.Time) {
	if sl.lost {
		b.lose(p, seq, 1)
		return
	}
	switch sl.kind {
	case kindData:
		var n uint64
		first, _ := forEachRecord(sl.body, func(ch, frame []byte) {
			b.out = append(b.out, delivery{from: p.pub, ch: b.intern(ch), frame: frame})
			n++
		})
		b.msgAccount(p, first)
		p.nextMsg = first + n
		p.st.Delivered += n
	case kindFrag:
		b.onFrag(p, sl, now)
	}
	// A burst of losses ends here; its message count is now known.
	if p.burstOpen {
		p.burstOpen = false
		b.reportLoss(p, now, false)
	}
}

// msgAccount counts messages skipped before message number m.
func (b *Bus) msgAccount(p *peer, m uint64) {
	if !p.msgKnown {
		p.msgKnown, p.nextMsg = true, m
		return
	}
	if m > p.nextMsg {
		p.st.LostMessages += m - p.nextMsg
		p.lossDirty = true
		p.nextMsg = m
	}
}

// tailAccount counts messages lost at the end of what a heartbeat
// announced, once every sequence it covers has been processed.
func (b *Bus) tailAccount(p *peer) {
	if p.beatValid && p.started && p.part == nil && p.next > p.beatLast && p.beatNextMsg > p.nextMsg {
		b.msgAccount(p, p.beatNextMsg)
	}
}

func (b *Bus) onFrag(p *peer, sl slot, now time.Time) {
	f, _ := decodeFrag(sl.body)
	m := f.Msg
	switch {
	case sl.fi == 0:
		if p.part != nil {
			b.dropPartial(p)
		}
		b.msgAccount(p, m)
		p.skipValid = false
		if int(f.Total) > b.cfg.MaxMessage {
			b.log.Warn("netbus: message too large, dropped", "node", p.pub.ID, "name", p.pub.Name, "size", f.Total, "max", b.cfg.MaxMessage)
			b.skipMessage(p, m)
			return
		}
		for b.partTotal+int(f.Total) > b.cfg.MaxReassembly {
			var old *peer
			for _, q := range b.peers {
				if q.part != nil && (old == nil || q.part.since.Before(old.part.since)) {
					old = q
				}
			}
			if old == nil {
				break
			}
			b.dropPartial(old)
		}
		if b.partTotal+int(f.Total) > b.cfg.MaxReassembly {
			b.skipMessage(p, m)
			return
		}
		p.part = &partial{msg: m, ch: b.intern([]byte(f.Channel)), total: int(f.Total), count: sl.fc, nextFi: 0, buf: make([]byte, 0, f.Total), since: now}
		b.partTotal += int(f.Total)
		fallthrough
	case p.part != nil && p.part.msg == m && sl.fi == p.part.nextFi && sl.fc == p.part.count:
		pt := p.part
		if len(pt.buf)+len(f.Chunk) > pt.total {
			b.dropPartial(p)
			return
		}
		pt.buf = append(pt.buf, f.Chunk...)
		pt.nextFi++
		if pt.nextFi < pt.count {
			return
		}
		b.partTotal -= pt.total
		p.part = nil
		if len(pt.buf) != pt.total {
			b.skipMessage(p, m)
			return
		}
		b.out = append(b.out, delivery{from: p.pub, ch: pt.ch, frame: pt.buf})
		p.nextMsg = m + 1
		p.st.Delivered++
	case p.skipValid && p.skipMsg == m:
		// The rest of a message already counted lost.
	default:
		// Its first fragment was lost (or its partial dropped).
		if p.part != nil {
			b.dropPartial(p)
		}
		if !(p.skipValid && p.skipMsg == m) {
			b.msgAccount(p, m)
			b.skipMessage(p, m)
		}
	}
}

// skipMessage counts message m lost and ignores its remaining fragments.
func (b *Bus) skipMessage(p *peer, m uint64) {
	p.st.LostMessages++
	p.lossDirty = true
	p.nextMsg = m + 1
	p.skipMsg, p.skipValid = m, true
}

func (b *Bus) dropPartial(p *peer) {
	pt := p.part
	p.part = nil
	b.partTotal -= pt.total
	b.skipMessage(p, pt.msg)
}

// onBeat applies a heartbeat: name, tail of the stream, retention.
func (b *Bus) onBeat(p *peer, hb *beatBody, now time.Time) {
	if p.pub.Name != hb.Name {
		p.pub.Name = hb.Name
	}
	if hb.LastSeq < p.beatLast {
		return // an older heartbeat, overtaken
	}
	p.beatValid, p.beatLast, p.beatNextMsg = true, hb.LastSeq, hb.NextMsg
	p.oldest = max(p.oldest, hb.Oldest)
	if !p.started {
		b.start(p, hb.LastSeq+1)
		if !p.msgKnown {
			p.msgKnown, p.nextMsg = true, hb.NextMsg
		}
	}
	if hb.LastSeq >= p.next+replayWindowSize-1 {
		b.skipTo(p, hb.LastSeq-(replayWindowSize-2), now)
	}
	for q := p.top + 1; q <= hb.LastSeq; q++ {
		p.missing[q] = &gap{since: now}
	}
	p.top = max(p.top, hb.LastSeq)
	if p.oldest > p.next {
		b.giveUpBefore(p, p.oldest, now)
	}
}

// giveUpBefore declares lost every missing sequence the sender no longer
// holds, and processes what that unblocks.
func (b *Bus) giveUpBefore(p *peer, oldest uint64, now time.Time) {
	for q := range p.missing {
		if q < oldest {
			b.declareLost(p, q)
		}
	}
	b.drain(p, now)
}

// endSession flushes a peer's stream before it is forgotten or restarts:
// buffered datagrams are delivered, gaps and a partial message counted lost.
func (b *Bus) endSession(p *peer, now time.Time) {
	if p.started && p.next <= p.top {
		b.skipTo(p, p.top+1, now)
	}
	if p.part != nil {
		b.dropPartial(p)
	}
	b.tailAccount(p)
	b.reportLoss(p, now, true)
}

// tick sends NAKs and heartbeats, gives up gaps, expires partial messages
// and peers. mu is held.
func (b *Bus) tick(now time.Time) {
	for id, p := range b.peers {
		if now.Sub(p.lastSeen) > b.cfg.PeerTimeout {
			b.endSession(p, now)
			b.forget(p, now)
			delete(b.peers, id)
			b.log.Info("netbus: peer gone", "node", id, "name", p.pub.Name, "addr", p.pub.Addr)
			continue
		}
		b.nakPeer(p, now, false)
		if p.part != nil && now.Sub(p.part.since) > b.cfg.ReassemblyTimeout {
			b.log.Warn("netbus: reassembly timed out", "node", id, "name", p.pub.Name, "message", p.part.msg)
			b.dropPartial(p)
		}
		b.tailAccount(p)
		if p.lossDirty && !p.burstOpen {
			b.reportLoss(p, now, false)
		}
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

// nakPeer asks p for missing sequences that are due, and gives up those
// that exhausted their NAKs or that p no longer holds.
// urgent (the reorder buffer is filling) skips NakDelay.
func (b *Bus) nakPeer(p *peer, now time.Time, urgent bool) {
	if len(p.missing) == 0 {
		return
	}
	var due []uint64
	lost := false
	for q, g := range p.missing {
		switch {
		case q < p.oldest:
			b.declareLost(p, q)
			lost = true
		case g.naks >= b.cfg.NakRetries:
			if now.Sub(g.lastNak) >= b.cfg.NakInterval {
				b.declareLost(p, q)
				lost = true
			}
		case g.naks == 0 && (urgent || now.Sub(g.since) >= b.cfg.NakDelay),
			g.naks > 0 && now.Sub(g.lastNak) >= b.cfg.NakInterval:
			due = append(due, q)
			g.naks++
			g.lastNak = now
		}
	}
	if lost {
		b.drain(p, now)
	}
	if len(due) == 0 {
		return
	}
	slices.Sort(due)
	var ranges []seqRange
	for _, q := range due {
		if n := len(ranges); n > 0 && ranges[n-1].Last+1 == q {
			ranges[n-1].Last = q
		} else {
			ranges = append(ranges, seqRange{q, q})
		}
	}
	per := (b.cfg.Payload - headerLen - tagLen - nakBodyFixed) / nakRangeLen
	for len(ranges) > 0 {
		n := min(per, len(ranges))
		nb := nakBody{Target: p.pub.ID, TargetEpoch: p.epoch, Ranges: ranges[:n]}
		b.wout = append(b.wout, Packet{Data: b.sealCtrl(kindNak, appendNak(nil, &nb)), Addr: p.pub.Addr})
		p.st.NaksSent++
		ranges = ranges[n:]
	}
}

// reportLoss logs losses since the last report: at the end of a burst,
// at most once per lossLogInterval (the tick reports what was held back).
func (b *Bus) reportLoss(p *peer, now time.Time, force bool) {
	if !p.lossDirty || (!force && now.Sub(p.lastLog) < lossLogInterval) {
		return
	}
	d, m := p.st.LostDatagrams-p.loggedDgrams, p.st.LostMessages-p.loggedMs
	p.loggedDgrams, p.loggedMs = p.st.LostDatagrams, p.st.LostMessages
	p.lossDirty, p.lastLog = false, now
	if d == 0 && m == 0 {
		return
	}
	b.log.Warn("netbus: unrecoverable loss", "node", p.pub.ID, "name", p.pub.Name, "addr", p.pub.Addr,
		"datagrams", d, "messages", m, "seq_first", p.lossFirst, "seq_last", p.lossLast, "total_datagrams", p.st.LostDatagrams, "total_messages", p.st.LostMessages)
}

// intern returns a shared string for a channel name, so steady traffic on
// known channels allocates none.
func (b *Bus) intern(ch []byte) string {
	if s, ok := b.chans[string(ch)]; ok {
		return s
	}
	s := string(ch)
	if len(b.chans) < 4096 {
		b.chans[s] = s
	}
	return s
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
	next := p.next
	if !p.started {
		next = p.data.top + 1
	}
	b.gone[p.pub.ID] = &goneSession{epoch: p.epoch, next: next, data: p.data, ctrl: p.ctrl, at: now}
}
