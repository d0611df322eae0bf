package server

// The outbox: frames queued for an agent, and what happens when it is full.

import (
	"fmt"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// deliver queues a message for the agent, or drops it (or disconnects the
// agent) if the agent's outbox is full. It reports whether the outbox is
// more than three quarters full and the sender should pause (see stall).
func (c *conn) deliver(d *delivery) (nearlyFull bool) {
	nearlyFull, _ = c.deliverTo(d)
	return nearlyFull
}

// deliverTo is deliver, and also reports whether pauses for the agent
// have been in vain since its writer last made progress: a sender pauses
// for an agent that is draining rather than for one that may be stuck.
func (c *conn) deliverTo(d *delivery) (nearlyFull, vain bool) {
	lim := c.srv.limits.Load()
	fd := fullDropOf(d, lim)
	if fd.drops(c) {
		d.drops++ // for c.ch's stats (deliverLocal)
		return false, false
	}
	nearlyFull, vain = c.queue(d, lim)
	d.countOut(c.ch)
	return nearlyFull, vain
}

// delivered returns how many messages were queued for the agent.
func (c *conn) delivered() uint64 {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.msgsOut
}

// queue is deliverTo once the message was not dropped without omu
// (fullDrop). It counts the message in d.outMsgs and d.outBytes, which its
// caller adds to c.ch's stats (countOut): once per message and channel
// rather than once per recipient.
func (c *conn) queue(d *delivery, lim *limits) (nearlyFull, vain bool) {
	c.omu.Lock()
	if c.closing || c.discarding {
		c.omu.Unlock()
		return false, false
	}
	n := len(c.obuf)
	frame := d.frameFor(c)
	if c.legacy {
		// An agent that will drop the message does not cost its
		// encoding; the envelope is made once for all legacy agents.
		if c.overLocked(legacyMinLen(d.v), lim) {
			c.overflowLocked(lim)
			return false, false
		}
		frame = d.legacyFrame()
	}
	if c.overLocked(len(frame), lim) {
		c.overflowLocked(lim)
		return false, false
	}
	if !c.legacy {
		c.obuf = c.appendDroppedLocked(c.obuf)
	}
	// Its capacity grows to what it may hold beside conv and the batch in
	// flight, no more: a silent connection turned legacy holds its
	// backlog in conv (issue 10, item 5: 100 of them took the process
	// past its memorylimit, and its collector ran without end).
	c.obuf = appendBounded(c.obuf, frame, lim.outBuffer-c.queuedLocked()+len(c.obuf))
	if n == 0 {
		// Into an empty outbox, whoever wakes the writer and when
		// (d.wakes): acknowledgements wait for it (acks_set.go).
		c.ackMark()
		if len(c.obuf) > lim.outBuffer {
			c.obig = len(c.obuf)
		}
	}
	wake := n == 0 && !(d.inPlace > 0 && c.flushNowLocked() > 0) // else written in place (conn_direct.go)
	if !wake && n == 0 {
		d.inPlace--
	}
	nearlyFull = (!c.stalled || d.patient) && !c.undecided && c.queuedLocked() > lim.outBuffer/4*3
	vain = c.stalls > 0
	answerer := d.call && !c.legacy && c.version >= wire.VersionCalls
	c.msgsOut++
	c.bytesOut += uint64(len(frame))
	c.omu.Unlock()
	if answerer {
		d.answerers++
	}
	d.outMsgs++ // added to c.ch's stats by the caller (delivery.countOut)
	d.reached++
	d.outBytes += uint64(len(frame))
	if wake && d.wakes != nil {
		*d.wakes = append(*d.wakes, c)
	} else if wake {
		c.signal()
	}
	return nearlyFull, vain
}

// dropFast drops a message for an agent whose outbox had no room for a
// message as large since its writer last took it (full): counted like any
// drop (overflowLocked), without taking omu; the caller counts it in the
// channel's stats.
func (c *conn) dropFast() {
	if d := c.dropped.Add(1); d%1024 == 0 {
		c.dropWarnSome()
	}
}

// dropWarnSome logs the drops for c if a warning is due (dropFast, every
// 1024th drop).
func (c *conn) dropWarnSome() {
	c.omu.Lock()
	w, warn := c.dropWarnDue(time.Now())
	c.omu.Unlock()
	if warn {
		c.warnDropped(w)
	}
}

// fullDrop is deliverTo's drop without omu for a full outbox, with what
// it needs of the message worked out once for all its recipients
// (deliverLocal): an agent that reads nothing costs a sender an atomic
// load and an add per message (issue 10, item 5: 100 such listeners
// beside a healthy pair).
type fullDrop struct {
	on     bool // not a Call, and slow consumers are not disconnected
	size   int  // the frame's size for a native agent
	legacy int  // its least size as a legacy envelope (legacyMinLen)
	bound  int  // outbuffer
}

func fullDropOf(d *delivery, lim *limits) fullDrop {
	if d.call || lim.disconnectSlow {
		return fullDrop{}
	}
	return fullDrop{on: true, size: len(d.raw), legacy: legacyMinLen(d.v), bound: lim.outBuffer}
}

// drops drops the message for c, as deliverTo would, if c's outbox is
// full for it, and reports whether it did; the caller counts the drop in
// the channel's stats.
func (f *fullDrop) drops(c *conn) bool {
	if !f.full(c) {
		return false
	}
	c.dropFast()
	return true
}

// full reports whether the message is to be dropped for c without omu:
// c's outbox had no room for it since its writer last took it.
func (f *fullDrop) full(c *conn) bool { return f.fullAt(c.full.Load()) }

// fullAt is full for an outbox whose c.full is v.
func (f *fullDrop) fullAt(v int64) bool {
	if v == 0 || !f.on {
		return false
	}
	room, legacy := fullRoom(v)
	return f.over(room, legacy)
}

// over reports whether the message does not fit in room bytes of an
// outbox, and is not larger than the bound (such a frame goes into an
// empty outbox): measured as an envelope for a legacy agent.
func (f *fullDrop) over(room int, legacy bool) bool {
	size := f.size
	if legacy {
		size = f.legacy
	}
	return size > room && size <= f.bound
}

// markFullLocked sets c.full after a message did not fit. c.omu is held.
func (c *conn) markFullLocked(lim *limits) {
	v := int64(max(lim.outBuffer-c.queuedLocked(), 0)+1) << 1
	if c.legacy {
		v |= 1
	}
	if old := c.full.Swap(v); old != 0 && old != v {
		c.ch.fullGen.Add(1) // marked otherwise: senders look again (dropbatch.go)
	}
}

// clearFull unmarks c's outbox as full: its writer took it, or c no
// longer gets messages. Senders that skip c as known full (dropbatch.go)
// look at it again from their next message.
func (c *conn) clearFull() {
	// Looked at first: the writer clears at every take (tookLocked), and
	// a write of full, even of the 0 it holds, costs the senders, which
	// read it for every message, a miss of its cache line. Only under omu
	// is full set (markFullLocked), and clearFull is called with it held.
	if c.full.Load() != 0 && c.full.Swap(0) != 0 {
		c.ch.fullGen.Add(1)
	}
}

// fullRoom decodes c.full: the room left in the outbox, and whether the
// agent is legacy (its messages are measured as envelopes).
func fullRoom(v int64) (room int, legacy bool) { return int(v>>1) - 1, v&1 != 0 }

// appendDroppedLocked appends a Dropped frame to buf for the drops not yet
// reported to the agent, if there are any. c.omu is held.
func (c *conn) appendDroppedLocked(buf []byte) []byte {
	n := c.dropped.Load()
	if n == c.told {
		return buf
	}
	buf = wire.AppendU64(buf, wire.TypeDropped, n-c.told)
	c.told = n
	c.ackMark() // no drops left untold (acks_set.go)
	return buf
}

// appendBounded appends frame to buf, growing buf's capacity by doubling
// but not past bound (what buf may hold) unless the frame needs it: an
// outbox holds what it may queue, not twice that.
func appendBounded(buf, frame []byte, bound int) []byte {
	need := len(buf) + len(frame)
	if need <= cap(buf) {
		return append(buf, frame...)
	}
	size := max(min(2*cap(buf), bound), need, 512)
	grown := make([]byte, len(buf), size)
	copy(grown, buf)
	return append(grown, frame...)
}

// legacyMinLen is the least size of v's legacy envelope (wire.AppendLegacy):
// its size exactly when the data is JSON.
func legacyMinLen(v *wire.MsgView) int {
	const fixed = len(`{"channel":"","broadcast":false,"event":"","data":}`) + 1
	return fixed + len(v.Channel) + len(v.Event) + len(v.Data)
}

// queuedLocked is what counts against the outbox bound: the batch the
// writer is writing and the frames queued after it, less a frame larger
// than the bound alone at the head of either, and the part of conv's
// array already converted, which the outbox still holds (convert). c.omu
// is held.
func (c *conn) queuedLocked() int {
	return c.inflight + c.convGone + len(c.conv) + len(c.obuf) - c.obig
}

// overLocked reports whether a frame of size bytes would pass the outbox
// bound. A frame larger than the bound is accepted into an empty queue, and
// does not count against the bound for the frames after it. c.omu is held.
func (c *conn) overLocked(size int, lim *limits) bool {
	return (len(c.obuf)+len(c.conv) > 0 || size <= lim.outBuffer) && c.queuedLocked()+size > lim.outBuffer
}

// overflowLocked deals with a message that does not fit: it is dropped
// and counted, or the agent disconnected, as configured. It reports
// whether the agent was disconnected. It unlocks c.omu, which is held.
func (c *conn) overflowLocked(lim *limits) (disconnected bool) {
	if lim.disconnectSlow {
		c.omu.Unlock()
		c.ch.stats.slow.Add(1)
		c.closeWithError(&protoError{code: wire.CodeSlowConsumer,
			text: fmt.Sprintf("disconnected as a slow consumer: more than %d bytes queued", lim.outBuffer)})
		if held, ok := c.srv.warns.allow(time.Now()); ok {
			c.srv.log.Warn("slow consumer disconnected", "channel", c.ch.name, "agent", c.id, "outbuffer", lim.outBuffer, "warnings_held", held)
		}
		return true
	}
	c.markFullLocked(lim)
	c.dropped.Add(1)
	c.ch.stats.dropped.Add(1)
	// The clock is read for the first drop and every 1024th, not for
	// each: drops must stay cheap when many agents do not read.
	var w dropWarnDueInfo
	var warn bool
	if d := c.dropped.Load(); d-c.dropWarn.warned == 1 || d%1024 == 0 {
		w, warn = c.dropWarnDue(time.Now())
	}
	c.omu.Unlock()
	if warn {
		c.warnDropped(w)
	}
	return false
}

// runWaitAt is what a recipient's outbox may hold before the goroutine
// delivering runs from NATS waits for its writer: bbWaitAt, or three
// quarters of outbuffer if that is less.
func (l *limits) runWaitAt() int { return min(l.outBuffer/4*3, bbWaitAt) }

// bbWaitAt bounds what the goroutine delivering runs from NATS
// (backbone_run.go: a plain channel's stream from one agent) lets a
// recipient's outbox hold before it waits for the agent's writer (a run,
// 256 KiB at most, may pass it before the wait): 1 MiB, not three
// quarters of outbuffer (6 MiB by default). The writer writes 256 KiB at a
// time and wakes the deliverer after each chunk, so the wait paces it to
// the agent as before, and what would have waited in the outbox waits in
// the NATS client's buffers instead. At three quarters, S9's listener's
// outbox and the batch its writer was writing grew to 8 MiB each: their
// arrays grew from 512 bytes 13-14 times per run (14-23 MB copied, 28-40
// MB allocated and cleared, for 54 MB queued), and the 12-16 MiB in
// flight did not stay in the CPU's cache. Frames delivered one by one
// (durable channels, older publishers, queue groups) wait at three
// quarters still: the lower mark is measured for runs only (S10's durable
// consumer, waiting at 1 MiB, gave 296k against 333k msgs/s in one set of
// alternated rounds, and was level in another).
const bbWaitAt = 1 << 20

// stallMax bounds how long a sender's reader pauses for one nearly full
// recipient. stallBudget bounds the pauses in vain, those that end
// without the recipient's writer making progress: per recipient, until its
// writer next makes progress, and per sender, as a credit that refills by
// stallRefill of the time that passes.
const (
	stallMax    = 5 * time.Millisecond
	stallBudget = 500 * time.Millisecond
	stallRefill = 100 // the credit grows by 1/stallRefill of the time passed
)

// A recipient whose writer has written provenBytes in all (more than a
// socket buffers) has an agent that reads, not one that never does: it is
// paused for without the sender's credit for provenFree of pauses in vain
// after each progress, so that one short of CPU is not overrun while
// stuck agents have spent the sender's credit.
const (
	provenBytes = 1 << 20
	provenFree  = 50 * time.Millisecond
)

// A legacy connection whose outbox was nearly full at its decision
// (toLegacy) is not paused for until its writer has written more than
// unprovenBufs socket buffers (a write may pass SO_SNDBUF by up to half of
// it); defaultSockBuf is SO_SNDBUF where it cannot be read (Linux's
// default for a Unix socket).
const (
	unprovenBufs   = 2
	defaultSockBuf = 212992
)

// stall pauses the reader of this connection (the sender) until the
// writer of recipient r makes progress (takes its outbox, or writes a
// chunk of it: the agent is reading), or for stallMax at most. A sender
// faster than its reader is thus slowed to the reader's pace instead of
// losing messages. A pause that ends with progress costs nothing: the
// recipient is draining, and pausing for it is pacing. One that ends
// without costs the sender stallMax of its credit, given back if r makes
// progress later (it was slow, a process short of CPU, not stuck). Once r
// has had such a pause since its writer last made progress, r is waited
// for only while the sender has credit left: recipients that make no
// progress cost a sender stallBudget, then a hundredth of its time,
// however many of them there are and however often they are replaced
// (an agent that has read a lot gets provenFree more after each progress).
// One that has cost stallBudget of pauses stops causing them, and then
// has messages dropped (or is disconnected) as configured. A pause that
// ends while r's writer is not in a write (woken, but not yet run: a busy
// machine) is not in vain either, up to stallBudget of them until the
// writer makes progress. Deliveries to other agents are delayed by a
// pause, never blocked.
func (c *conn) stall(r *conn) {
	c.refund()
	c.flushIn() // what it routed before is acknowledged meanwhile
	r.omu.Lock()
	if r.closing || r.stalled || r.queuedLocked() <= c.srv.limits.Load().outBuffer/4*3 {
		r.omu.Unlock()
		return
	}
	if r.stalls > 0 && c.stallCredit() < stallMax && (r.wrote < provenBytes || r.stalls >= provenFree) {
		r.omu.Unlock()
		return
	}
	if r.room == nil {
		r.room = make(chan struct{})
	}
	room, at := r.room, r.progress.Load()
	r.omu.Unlock()
	s := c.sending()
	if s.stallTimer == nil {
		s.stallTimer = time.NewTimer(stallMax)
	} else {
		s.stallTimer.Reset(stallMax)
	}
	select {
	case <-room:
		s.stallTimer.Stop()
	case <-r.done:
		s.stallTimer.Stop()
	case <-s.stallTimer.C:
		r.omu.Lock()
		vain := r.progress.Load() == at
		if vain && !r.writing && r.waits < stallBudget {
			// Its writer is not blocked in a write: it was woken and has
			// yet to run (a busy machine), which says nothing of the
			// agent. The pause costs neither the sender's credit nor the
			// recipient's budget, so that a stuck agent having spent the
			// credit does not leave a healthy one without pauses.
			r.waits += stallMax
			vain = false
		}
		if vain {
			r.stalls += stallMax
			r.stalled = r.stalls >= stallBudget // no more pauses until its writer makes progress
			r.chargeLocked(c)
		}
		r.omu.Unlock()
		if vain {
			s.credit.left = max(c.stallCredit()-stallMax, -stallBudget)
		}
	}
}

// charge is what one sender's pauses in vain for a recipient cost it.
type charge struct {
	sender *conn
	amount time.Duration
}

// maxCharged bounds the senders a recipient remembers charges of; past
// it, pauses are not given back.
const maxCharged = 16

// chargeLocked notes that sender's pause for c was in vain, to give it
// back when c makes progress (tookLocked). c.omu is held.
func (c *conn) chargeLocked(sender *conn) {
	sl := c.slowLocked()
	for i := range sl.chargedBy {
		if sl.chargedBy[i].sender == sender {
			sl.chargedBy[i].amount += stallMax
			return
		}
	}
	if len(sl.chargedBy) < maxCharged {
		sl.chargedBy = append(sl.chargedBy, charge{sender, stallMax})
	}
}

// refundLocked gives the senders charged for pauses in vain for c their
// credit back: c made progress, it was slow (short of CPU), not stuck.
// c.omu is held.
func (c *conn) refundLocked() {
	if c.slow == nil {
		return
	}
	sl := c.slow
	for i, ch := range sl.chargedBy {
		ch.sender.refunds.Add(int64(ch.amount))
		sl.chargedBy[i] = charge{}
	}
	sl.chargedBy = sl.chargedBy[:0]
}

// refund adds what recipients gave back to the sender's credit. Only the
// reader calls it.
func (c *conn) refund() {
	if n := c.refunds.Load(); n != 0 {
		c.refunds.Add(-n)
		s := c.sending()
		s.credit.left = min(s.credit.left+time.Duration(n), stallBudget)
	}
}

// stallCredit refills and returns the sender's credit of pauses (see
// stall).
func (c *conn) stallCredit() time.Duration {
	return c.sending().credit.refill(time.Now(), stallBudget)
}

// pauseCredit is a budget of pauses that refills by 1/stallRefill of the
// time that passes, up to a bound: a sender's pauses in vain (stall) and
// the backbone's pauses for one recipient (waitRoom).
type pauseCredit struct {
	left   time.Duration
	filled time.Time // when left was last refilled; the zero value refills to full
}

// refill adds what the time since the last refill earned, up to bound,
// and returns what is left.
func (p *pauseCredit) refill(now time.Time, bound time.Duration) time.Duration {
	p.left = min(p.left+now.Sub(p.filled)/stallRefill, bound)
	p.filled = now
	return p.left
}

// sendControl queues a frame that is not a message (pong, reply). Such
// frames are not dropped, but an agent that lets them pile up past twice
// its outbox bound is disconnected.
func (c *conn) sendControl(frame []byte) {
	if c.legacy {
		return
	}
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	if c.queuedLocked() > 2*lim.outBuffer {
		c.omu.Unlock()
		c.closeWithError(&protoError{code: wire.CodeSlowConsumer, text: "disconnected: not reading its replies"})
		return
	}
	n := len(c.obuf)
	c.obuf = append(c.obuf, frame...)
	// Written in place into an empty outbox (a Pong, say), unless drops
	// are yet to be told: the writer tells them after it, as it finds the
	// outbox empty.
	if n == 0 && c.flushNowLocked() > 0 && c.dropped.Load() == c.told {
		c.omu.Unlock()
		return
	}
	c.omu.Unlock()
	c.signal()
}

// signal wakes the writer, or starts one (startWriter).
func (c *conn) signal() {
	c.ackMark() // frames queued (acks_set.go)
	select {
	case c.writer().wake <- struct{}{}:
	default:
	}
	c.startWriter()
}

// closeWithError stops deliveries and has the writer send an error frame
// after what is queued (or instead of it, for a slow consumer), then close.
func (c *conn) closeWithError(pe *protoError) {
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	c.closing = true
	c.clearFull()
	// An agent that does not read must not keep its connection: the
	// writer gets lingerTimeout to send what is queued and the error
	// (slowLinger for the error alone, for a slow consumer).
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	var last []byte
	if c.legacy {
		last = appendLegacyError(nil, pe)
	} else {
		last = wire.AppendError(nil, wire.Error{Code: pe.code, Text: pe.text})
	}
	if pe.code == wire.CodeSlowConsumer {
		// Queue group messages go to other members (requeue); the rest
		// is discarded, and the write in flight is cut short so that the
		// error frame comes next (sockWriter).
		_, taken := takeQueued(c.obuf, nil, func(uint32) bool { return true })
		sl := c.slowLocked()
		sl.unsent = append(sl.unsent, taken...)
		c.obuf, c.conv, c.convGone, c.obig = c.obuf[:0], nil, 0, 0
		sl.cut, sl.cutUntil = last, time.Now().Add(slowLinger)
		c.nc.SetWriteDeadline(time.Now())
	}
	c.obuf = append(c.obuf, last...)
	c.omu.Unlock()
	c.signal()
}

// appendLegacyError tells a legacy agent what went wrong, as an event
// named "nc-error" on the control channel.
func appendLegacyError(dst []byte, pe *protoError) []byte {
	data := fmt.Appendf(nil, `{"code":%d,"error":%q}`, pe.code, pe.text)
	return wire.AppendLegacy(dst, &wire.MsgView{Flags: wire.FlagJSON, Channel: []byte("control"), Event: []byte("nc-error"), Data: data})
}

// slowState is what a connection needs only once its agent fell behind:
// charges of senders' pauses, and what a slow-consumer close or a failed
// write left. Made by slowLocked, at most once per connection; under omu.
type slowState struct {
	chargedBy []charge  // senders whose pauses for it were in vain since its writer last made progress
	unsent    []byte    // QueueMsg frames that a failed write or a slow-consumer close did not write, for requeue
	cut       []byte    // a slow consumer's error frame, to write after the frame in flight (sockWriter)
	cutUntil  time.Time // when the writer gives up writing cut
}

// slowLocked returns c's slowState, made at the first call. c.omu is held.
func (c *conn) slowLocked() *slowState {
	if c.slow == nil {
		c.slow = new(slowState)
	}
	return c.slow
}

// cutLocked returns the slow consumer's error frame still to write after
// the frame in flight, and until when, or nil. c.omu is held.
func (c *conn) cutLocked() ([]byte, time.Time) {
	if c.slow == nil {
		return nil, time.Time{}
	}
	return c.slow.cut, c.slow.cutUntil
}
