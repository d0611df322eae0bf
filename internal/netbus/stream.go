package netbus

import (
	"iter"
	"log/slog"
	"time"
)

// stream is the receive side of one peer's session: it puts the peer's
// data datagrams in order, tracks the gaps and when to NAK them, gives up
// what cannot come, reassembles fragmented messages and counts every
// loss. It is pure: no sockets, no goroutines, no clock (every method that
// needs the time is given it). Its outputs are deliveries appended to
// env.out, NAK ranges returned by dueNaks, and log lines. The Bus's loop
// goroutine owns it (Bus.mu held).
//
// Invariants: every data sequence below next was processed (delivered or
// given up); every sequence in [next, top] is in exactly one of pending
// (received), lost (given up, processed in its turn) or gaps (missing);
// top-next stays below replayWindowSize.
type stream struct {
	env   *streamEnv
	from  *Peer  // the sender, as deliveries and logs name it
	epoch uint64 // the sender's session

	started   bool
	next, top uint64
	pending   map[uint64]slot
	pendBytes int
	gaps      gapSet    // missing, to NAK
	lost      gapSet    // given up, not yet reached
	nakAt     time.Time // no gap needs a NAK before then

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

	st streamStats
}

// streamStats are the PeerStats fields a stream counts.
type streamStats struct {
	Delivered, Reordered, Recovered, LostDatagrams, LostMessages, Late uint64
}

// slot is a received data datagram waiting for its turn.
type slot struct {
	kind   uint8
	fi, fc uint16
	body   []byte
}

// streamEnv is what the streams of one Bus share: the limits, the memory
// budgets they draw on together, and the deliveries they produce, which
// the Bus hands to its DeliverFunc after each batch.
type streamEnv struct {
	cfg   *Config // MaxPending, MaxPendingTotal, MaxMessage, MaxReassembly, Nak*
	epoch uint64  // this node's session, for the start rule
	log   *slog.Logger

	pendTotal int    // bytes held out of order by all streams
	pendSlots int    // datagrams held out of order by all streams
	partTotal int    // bytes reserved for reassembly by all streams
	ranges    int    // gap and lost ranges of all streams
	peers     int    // peers in the table
	proven    int    // of which proven (replay windows, a stream)
	gone      int    // forgotten sessions remembered
	refused   uint64 // datagrams refused for Config.MaxMemory, for the Bus to count
	out       []delivery
	chans     map[string]string // interned channel names

	// evict frees memory for a stream (Bus.evict); nil: none.
	evict func(keep *stream) bool
	// all yields every stream, for the shared budgets; nil: none.
	all iter.Seq[*stream]
}

type delivery struct {
	from  Peer
	ch    string
	frame []byte
}

// newStream returns the stream of a session (epoch) of from.
func newStream(env *streamEnv, from *Peer, epoch uint64) stream {
	return stream{env: env, from: from, epoch: epoch, pending: map[uint64]slot{}, gaps: newGapSet(&env.ranges), lost: newGapSet(&env.ranges), oldest: 1}
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
func (s *stream) start(first uint64) {
	if s.env.young(s.epoch) && first < replayWindowSize {
		first = 1
		s.msgKnown, s.nextMsg = true, 0
	}
	s.started = true
	s.next, s.top = first, first-1
}

// young reports whether a session (epoch) began no earlier than ours, or
// within startGrace before it: one to follow from its first datagram.
func (e *streamEnv) young(epoch uint64) bool { return epoch+uint64(startGrace) >= e.epoch }

// resume continues a forgotten session from sequence next on.
func (s *stream) resume(next uint64) {
	s.started, s.next, s.top = true, next, next-1
}

// onData puts a data datagram (DATA or FRAG, body validated) into the
// stream. body may be the read buffer: it is copied if kept. It returns
// false, having changed nothing, when holding the datagram would take
// the Bus over Config.MaxMemory.
func (s *stream) onData(h header, body []byte, now time.Time) bool {
	q := h.Seq
	if !s.started {
		s.start(q - min(uint64(h.FragIndex), q-1))
	}
	if q < s.next {
		s.st.Late++
		return true
	}
	if q != s.next {
		cost := len(body) + slotCost
		if q > s.top+1 || s.gaps.splitCost(q) {
			cost += rangeCost
		}
		if !s.env.room(cost, s) {
			s.env.refused++
			return false
		}
	}
	// Keep the span below the replay window: give up what is too old.
	if q-s.next >= replayWindowSize-1 {
		s.skipTo(q-(replayWindowSize-2), now)
	}
	if q > s.top {
		s.addGap(s.top+1, q-1, now)
		s.top = q
	} else if naks, ok := s.gaps.take(q, now); ok {
		if naks > 0 {
			s.st.Recovered++
		} else {
			s.st.Reordered++
		}
	}
	sl := slot{kind: h.Kind, fi: h.FragIndex, fc: h.FragCount, body: body}
	if q == s.next {
		s.process(q, sl, now)
		s.next++
		if len(s.pending) > 0 || !s.lost.empty() {
			s.drain(now)
		}
		return true
	}
	if _, ok := s.pending[q]; ok {
		// A copy of a held datagram (the Bus's replay window refuses
		// them first; this keeps the byte counts right on its own).
		return true
	}
	sl.body = append([]byte(nil), body...) // the read buffer is reused
	s.pending[q] = sl
	s.pendBytes += len(sl.body)
	s.env.pendTotal += len(sl.body)
	s.env.pendSlots++
	for s.pendBytes > s.env.cfg.MaxPending && s.next <= s.top {
		s.skipTo(s.next+1, now)
	}
	s.env.boundPending(now)
	return true
}

// slotCost is what holding one out-of-order datagram costs against
// Config.MaxMemory beyond its bytes (map entry, slice header).
const slotCost = 96

// addGap records first..last as missing, and makes the next tick look at
// the gaps.
func (s *stream) addGap(first, last uint64, now time.Time) {
	if first > last {
		return
	}
	s.gaps.addRun(first, last, now)
	if due := now.Add(s.env.cfg.NakDelay); s.nakAt.IsZero() || due.Before(s.nakAt) {
		s.nakAt = due
	}
}

// advance processes the slot at next, if it is there, or the given-up run
// starting there, and moves past it.
func (s *stream) advance(now time.Time) bool {
	sl, ok := s.pending[s.next]
	if !ok {
		if n := s.lost.popFrom(s.next, s.top+1); n > 0 {
			s.lose(s.next, n)
			s.next += n
			return true
		}
		return false
	}
	delete(s.pending, s.next)
	s.pendBytes -= len(sl.body)
	s.env.pendTotal -= len(sl.body)
	s.env.pendSlots--
	s.process(s.next, sl, now)
	s.next++
	return true
}

// drain processes pending slots from next on while they are contiguous.
func (s *stream) drain(now time.Time) {
	for s.advance(now) {
	}
}

// skipTo gives up every sequence below upto that has not arrived, and
// processes the rest in order.
func (s *stream) skipTo(upto uint64, now time.Time) {
	for s.next < upto {
		if s.advance(now) {
			continue
		}
		if s.next > s.top { // never heard of: give up the whole run at once
			s.lose(s.next, upto-s.next)
			s.next, s.top = upto, upto-1
			break
		}
		n := s.gaps.popFrom(s.next, upto)
		if n == 0 {
			n = 1 // not held anywhere: cannot happen; lose it all the same
		}
		s.lose(s.next, n)
		s.next += n
	}
	s.drain(now)
}

// process handles one datagram at the stream position.
func (s *stream) process(seq uint64, sl slot, now time.Time) {
	switch sl.kind {
	case kindData:
		var n uint64
		first, _ := forEachRecord(sl.body, func(ch, frame []byte) {
			s.env.out = append(s.env.out, delivery{from: *s.from, ch: s.env.intern(ch), frame: frame})
			n++
		})
		s.msgAccount(first)
		s.nextMsg = first + n
		s.st.Delivered += n
	case kindFrag:
		s.onFrag(sl, now)
	}
	// A burst of losses ends here; its message count is now known.
	if s.burstOpen {
		s.burstOpen = false
		s.reportLoss(now, false)
	}
}

// onBeat applies a heartbeat (validated): the tail of the stream, and
// what the sender still holds.
func (s *stream) onBeat(hb *beatBody, now time.Time) {
	if hb.LastSeq < s.beatLast {
		return // an older heartbeat, overtaken
	}
	s.beatValid, s.beatLast, s.beatNextMsg = true, hb.LastSeq, hb.NextMsg
	s.oldest = max(s.oldest, hb.Oldest)
	if !s.started {
		s.start(hb.LastSeq + 1)
		if !s.msgKnown {
			s.msgKnown, s.nextMsg = true, hb.NextMsg
		}
	}
	if hb.LastSeq >= s.next+replayWindowSize-1 {
		s.skipTo(hb.LastSeq-(replayWindowSize-2), now)
	}
	if hb.LastSeq > s.top {
		if !s.env.room(rangeCost, s) {
			s.env.refused++
		} else {
			s.addGap(s.top+1, hb.LastSeq, now)
			s.top = hb.LastSeq
		}
	}
	if s.oldest > s.next {
		s.giveUpBefore(s.oldest, now)
	}
}

// giveUpBefore declares lost every missing sequence the sender no longer
// holds, and processes what that unblocks.
func (s *stream) giveUpBefore(oldest uint64, now time.Time) {
	s.gaps.moveBelow(oldest, &s.lost)
	s.drain(now)
}

// urgent reports whether the reorder span passed a quarter of the window
// with gaps open: then NAKs should go now, not at the next tick.
func (s *stream) urgent() bool {
	return !s.gaps.empty() && s.top-s.next >= replayWindowSize/4
}

// dueNaks returns the missing sequences to NAK now, as sorted ranges, and
// gives up those that exhausted their NAKs or that the sender no longer
// holds. urgent (the reorder buffer is filling) skips NakDelay. It looks
// at the gaps only when one is due (nakAt), so a tick costs nothing for a
// stream whose gaps are waiting.
func (s *stream) dueNaks(now time.Time, urgent bool) []seqRange {
	if s.gaps.empty() || (!urgent && now.Before(s.nakAt)) {
		return nil
	}
	cfg := s.env.cfg
	var due []seqRange
	var next time.Time
	lost := false
	if s.oldest > s.next {
		s.gaps.moveBelow(s.oldest, &s.lost)
		lost = true
	}
	for i := 0; i < len(s.gaps.rs); {
		r := &s.gaps.rs[i]
		var at time.Time
		switch {
		case r.tries >= cfg.NakRetries:
			if now.Sub(r.lastNak) >= cfg.NakInterval {
				s.gaps.moveAt(i, &s.lost)
				lost = true
				continue
			}
			at = r.lastNak.Add(cfg.NakInterval)
		case r.naks == 0 && (urgent || now.Sub(r.since) >= cfg.NakDelay),
			r.naks > 0 && now.Sub(r.lastNak) >= cfg.NakInterval && now.Sub(r.moved) >= cfg.NakInterval:
			// Asked again only once the answers stopped coming: a long
			// gap answered in parts is not asked again, and answered
			// again, while its last answer is still arriving.
			due = append(due, seqRange{r.first, r.last})
			r.naks++
			r.tries++
			r.lastNak = now
			at = now.Add(cfg.NakInterval)
		case r.naks == 0:
			at = r.since.Add(cfg.NakDelay)
		default:
			at = r.lastNak.Add(cfg.NakInterval)
			if m := r.moved.Add(cfg.NakInterval); m.After(at) {
				at = m
			}
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
		i++
	}
	s.nakAt = next
	if lost {
		s.drain(now)
	}
	return due
}

// expire is the stream's part of a tick: a partial message older than
// ReassemblyTimeout is dropped, the tail the last heartbeat announced is
// accounted, and losses held back from the log are reported.
func (s *stream) expire(now time.Time) {
	if s.part != nil && now.Sub(s.part.since) > s.env.cfg.ReassemblyTimeout {
		s.env.log.Warn("netbus: reassembly timed out", "node", s.from.ID, "name", s.from.Name, "message", s.part.msg)
		s.dropPartial()
	}
	s.tailAccount()
	if s.lossDirty && !s.burstOpen {
		s.reportLoss(now, false)
	}
}

// end flushes the stream before its peer is forgotten or restarts:
// buffered datagrams are delivered, gaps and a partial message counted
// lost, and the losses reported.
func (s *stream) end(now time.Time) {
	if s.started && s.next <= s.top {
		s.skipTo(s.top+1, now)
	}
	if s.part != nil {
		s.dropPartial()
	}
	s.gaps.clear()
	s.lost.clear()
	s.tailAccount()
	s.reportLoss(now, true)
}

// boundPending gives up sequences, in the stream holding the most, until
// the bytes all streams hold out of order fit MaxPendingTotal.
func (e *streamEnv) boundPending(now time.Time) {
	for (e.pendTotal > e.cfg.MaxPendingTotal || e.mem() > e.cfg.MaxMemory) && e.all != nil {
		var big *stream
		for s := range e.all {
			if big == nil || s.pendBytes > big.pendBytes {
				big = s
			}
		}
		if big == nil || big.pendBytes == 0 {
			break
		}
		big.skipTo(big.next+1, now)
	}
}

// intern returns a shared string for a channel name, so steady traffic on
// known channels allocates none.
func (e *streamEnv) intern(ch []byte) string {
	if s, ok := e.chans[string(ch)]; ok {
		return s
	}
	s := string(ch)
	if len(e.chans) < 4096 {
		e.chans[s] = s
	}
	return s
}
