package server

// The acker's rounds (docs/PROTOCOL.md section 14). A round costs in
// proportion to the connections that have something to acknowledge or to
// wait for, not to all of them: the senders with numbers routed since
// their last Ack register themselves (kick), and each channel keeps the
// set of its agents that may have something queued or in a write
// (ackSet); an idle agent is in neither.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// acker sends the Acks of a running server: in rounds, each taking the
// last number routed from every version 3 connection that routed one
// since it was last acknowledged, waiting until every agent of the
// channels those messages could reach has had what its outbox held then
// written (or is dropped for or disconnected, or has written nothing for
// ackGiveUp), then acknowledging the numbers taken. Writers wake it as
// they finish their writes. It sleeps while no number waits.
type acker struct {
	wake    chan struct{}
	idle    atomic.Bool
	wrote   chan struct{} // a writer finished a write while waiting is set
	waiting atomic.Bool   // a round waits for writers
	stopc   chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	senders []*conn // registered since the last round took them (kick)

	// The loop's, reused round after round.
	taken []*conn
	cands []ackCand
	chans []*channel
	scope []*conn
	wait  []ackWait
	buf   []byte
}

type ackCand struct {
	c   *conn
	seq uint64
}

// ackWait is a recipient whose writer has to finish batch number need.
// One that had frames queued while undecided still to turn into
// envelopes (conv) has to finish the take that empties conv, and the
// next one if obuf held frames too: need is known once conv is empty.
type ackWait struct {
	c     *conn
	need  uint64
	conv  bool      // need is not known yet: conv held frames
	obuf  bool      // with conv: obuf held frames too
	last  uint64    // its progress when last seen
	since time.Time // when progress last changed
}

func (a *acker) start() {
	a.wake = make(chan struct{}, 1)
	a.wrote = make(chan struct{}, 1)
	a.stopc = make(chan struct{})
	a.wg.Add(1)
	go a.run()
}

func (a *acker) stop() {
	if a.stopc != nil {
		close(a.stopc)
		a.wg.Wait()
		a.stopc = nil
	}
}

// written wakes a round waiting for writers: one finished a write. It
// costs a writer one atomic load while no round waits.
func (a *acker) written() {
	if a.waiting.Load() {
		select {
		case a.wrote <- struct{}{}:
		default:
		}
	}
}

// kick registers c, which has just routed a SeqMsg (c.routed is set), for
// the next round, and wakes the acker if it sleeps. Once registered, c's
// later SeqMsgs cost one atomic load each until the round takes it.
func (a *acker) kick(c *conn) {
	if c.ackSender.Load() || !c.ackSender.CompareAndSwap(false, true) {
		return
	}
	a.mu.Lock()
	a.senders = append(a.senders, c)
	a.mu.Unlock()
	if a.idle.Load() && a.idle.CompareAndSwap(true, false) {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

func (a *acker) run() {
	defer a.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		if !a.collect() {
			a.idle.Store(true)
			if !a.collect() { // a kick may have come before idle was set
				select {
				case <-a.wake:
				case <-a.stopc:
					return
				}
				continue
			}
			a.idle.Store(false)
		}
		a.snapshot()
		if len(a.wait) > 0 && !a.waitWriters(t) {
			return
		}
		for _, k := range a.cands {
			k.c.acked = k.seq
			a.buf = wire.AppendU64(a.buf[:0], wire.TypeAck, k.seq)
			k.c.sendControl(a.buf)
		}
		clear(a.cands)
		t.Reset(ackInterval)
		select {
		case <-t.C:
		case <-a.stopc:
			t.Stop()
			return
		}
	}
}

// waitWriters waits until the recipients of the round are done with
// (poll); false if the acker is stopped meanwhile.
func (a *acker) waitWriters(t *time.Timer) bool {
	a.waiting.Store(true)
	defer a.waiting.Store(false)
	a.poll(time.Now()) // a write may have ended before waiting was set
	for len(a.wait) > 0 {
		t.Reset(ackCheck)
		select {
		case <-a.wrote:
		case <-t.C:
		case <-a.stopc:
			t.Stop()
			return false
		}
		a.poll(time.Now())
	}
	t.Stop()
	return true
}

// collect takes the numbers to acknowledge from the senders registered
// since the last round, and the channels their messages could reach:
// theirs and those they propagate to. A sender is taken off the register
// before its number is read, so a number routed after the read registers
// it again (kick).
func (a *acker) collect() bool {
	a.mu.Lock()
	a.taken, a.senders = a.senders, a.taken[:0]
	a.mu.Unlock()
	a.cands, a.chans = a.cands[:0], a.chans[:0]
	for _, c := range a.taken {
		c.ackSender.Store(false)
		seq := c.routed.Load()
		if seq <= c.acked || !c.joined.Load() || c.version < wire.VersionAcks || c.legacy {
			continue
		}
		a.cands = append(a.cands, ackCand{c, seq})
		a.addChan(c.ch)
		for _, t := range c.ch.settings.Load().targets {
			a.addChan(t)
		}
	}
	clear(a.taken)
	return len(a.cands) > 0
}

func (a *acker) addChan(ch *channel) {
	for _, o := range a.chans {
		if o == ch {
			return
		}
	}
	a.chans = append(a.chans, ch)
}

// snapshot notes, for each agent of the channels collected that may have
// something to wait for (their ackSets), the batch its writer must finish
// for what its outbox holds now to be written. An agent found to have
// nothing is taken out of its set (ackSet).
func (a *acker) snapshot() {
	a.scope = a.scope[:0]
	for _, ch := range a.chans {
		a.scope = ch.acks.appendTo(a.scope)
	}
	now := time.Now()
	a.wait = a.wait[:0]
	for _, c := range a.scope {
		c.omu.Lock()
		stuck := c.ackStuck.Load()
		if stuck != 0 && stuck != c.progress.Load()+1 {
			stuck = 0 // its writer made progress since
			c.ackStuck.Store(0)
		}
		w := ackWait{c: c, need: c.takes, conv: len(c.conv) > 0, obuf: len(c.obuf) > 0, last: c.progress.Load(), since: now}
		if w.obuf {
			w.need++
		}
		if c.joined.Load() && !c.droppingLocked() && stuck == 0 && (w.conv || c.batches.Load() < w.need) {
			a.wait = append(a.wait, w)
		} else {
			c.ch.acks.remove(c)
		}
		c.omu.Unlock()
	}
	clear(a.scope)
}

// droppingLocked reports whether the server is disconnecting c or
// dropping messages for it: closing, discarding until its Welcome, stalls
// used up (senders no longer pause for it: what does not fit its outbox
// is dropped, or it is disconnected), its outbox full since the writer
// last took it, or drops it has not been told of yet (a native agent: a
// legacy one is never told, so its count of drops says nothing of now).
// Acknowledgements do not wait for such a recipient: it
// costs a sender no more than its bounded pauses (issue 10, item 5).
// c.omu is held.
func (c *conn) droppingLocked() bool {
	return c.closing || c.discarding || c.stalled || c.full.Load() != 0 || (!c.legacy && c.dropped.Load() != c.told)
}

// poll drops from the wait list the recipients done with: written,
// dropped for or closing, or given up on.
func (a *acker) poll(now time.Time) {
	keep := a.wait[:0]
	for _, w := range a.wait {
		if !w.conv && w.c.batches.Load() >= w.need {
			continue
		}
		w.c.omu.Lock()
		closing := w.c.droppingLocked()
		if w.conv && !closing && w.c.conv == nil {
			// The take that emptied conv is known, so is need
			// (convert takes conv before obuf, a chunk at a time).
			w.conv, w.need = false, w.c.convLast
			if w.obuf {
				w.need++
			}
		}
		w.c.omu.Unlock()
		if closing || !w.conv && w.c.batches.Load() >= w.need {
			continue
		}
		if pr := w.c.progress.Load(); pr != w.last {
			w.last, w.since = pr, now
		} else if now.Sub(w.since) >= ackGiveUp {
			w.c.ackStuck.Store(w.last + 1)
			continue
		}
		keep = append(keep, w)
	}
	clear(a.wait[len(keep):])
	a.wait = keep
}
