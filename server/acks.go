package server

// Acknowledgements (protocol version 3, docs/PROTOCOL.md section 14): an
// agent numbers the messages it emits (SeqMsg) and keeps each until the
// server acknowledges it (Ack). The server acknowledges a number once
// every message of the connection up to it is delivered: routed into the
// outbox of each recipient, and written from there to the recipient's
// connection (handed to the kernel's socket, or to the in-process pipe's
// reader), or dropped for it (counted, and told with Dropped). What a
// server holds in outboxes when it dies is thus never acknowledged, and
// the agent sends it again to the next server.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

const (
	// ackInterval is the pause between two rounds of acknowledgements:
	// one Ack per connection per round at most, whatever its rate.
	ackInterval = time.Millisecond
	// ackCheck is how often a round waiting for writers looks again at
	// the recipients whose state may have changed without a write (one
	// the server began to drop for, say); writers that finish a write
	// wake it at once.
	ackCheck = 10 * time.Millisecond
	// ackGiveUp: a recipient whose writer makes no progress for this
	// long (takes nothing, writes no chunk of a batch: writeChunk) is not
	// waited for (a slow consumer); what is queued for it is acknowledged
	// unwritten, and later rounds do not wait for it until its writer
	// makes progress again, so a stuck agent costs its senders one such
	// wait, not one per round. A recipient the server drops messages for,
	// or is disconnecting, is not waited for at all.
	ackGiveUp = time.Second
	// resumeGrace is how long after its start a server holds the
	// messages of an agent that resumes a stream (its first SeqMsg on the
	// connection is not number 1): the agents connected to the server
	// before it restarted come back meanwhile, listeners first, so the
	// messages sent again reach them.
	resumeGrace = 2 * time.Second
	// resumeQuiet: the hold goes on past resumeGrace while agents are
	// still joining, until none has joined for this long (resumeMax at
	// most).
	resumeQuiet = 250 * time.Millisecond
	resumeMax   = 10 * time.Second
)

// onSeqMsg routes a SeqMsg like a Msg, then records its number for the
// acker.
func (c *conn) onSeqMsg(f wire.Frame) error {
	_, seq, v, err := wire.ParseSeqMsg(f.Payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	if err := c.checkOrigin("seqmsg", &v); err != nil {
		return err
	}
	if len(v.Event) == 0 {
		return perr(wire.CodeMalformed, "seqmsg: empty event name")
	}
	if !c.seqSeen {
		c.seqSeen = true
		if seq > 1 {
			c.resumeWait()
		}
	}
	c.msgsIn.Add(1)
	d := delivery{raw: f.Raw, v: &v, seq: true, seqBuf: &c.seqScratch, memo: &c.memo}
	c.ch.routeDelivery(c, &d)
	c.routed.Store(seq)
	c.srv.acks.kick()
	return nil
}

// resumeWait holds a resumed stream until the server is resumeGrace old
// and no agent has joined for resumeQuiet, or it is resumeMax old.
func (c *conn) resumeWait() {
	for {
		d := c.srv.graceLeft(time.Now()) // streams.go
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
	}
}

// msgFrame returns the Msg frame of d: the frame as emitted, or the Msg
// form of a SeqMsg.
func (d *delivery) msgFrame() []byte {
	if !d.seq {
		return d.raw
	}
	if d.asMsg == nil {
		*d.seqBuf = wire.AppendMsgOfSeq((*d.seqBuf)[:0], d.raw[wire.HeaderLen:])
		d.asMsg = *d.seqBuf
	}
	return d.asMsg
}

// acker sends the Acks of a running server: in rounds, each taking the
// last number routed from every version 3 connection, waiting until every
// agent of the channels those messages could reach has had what its
// outbox held then written (or is dropped for or disconnected, or has
// written nothing for ackGiveUp), then acknowledging the numbers taken.
// Writers wake it as they finish their writes. It sleeps while no number
// waits.
type acker struct {
	wake    chan struct{}
	idle    atomic.Bool
	wrote   chan struct{} // a writer finished a write while waiting is set
	waiting atomic.Bool   // a round waits for writers
	stopc   chan struct{}
	wg      sync.WaitGroup

	// The loop's, reused round after round.
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
type ackWait struct {
	c     *conn
	need  uint64
	last  uint64    // its progress when last seen
	since time.Time // when progress last changed
}

func (a *acker) start(s *Server) {
	a.wake = make(chan struct{}, 1)
	a.wrote = make(chan struct{}, 1)
	a.stopc = make(chan struct{})
	a.wg.Add(1)
	go a.run(s)
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

// kick wakes the acker if it sleeps: a connection routed a SeqMsg.
func (a *acker) kick() {
	if a.idle.Load() && a.idle.CompareAndSwap(true, false) {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

func (a *acker) run(s *Server) {
	defer a.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	sleep := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-t.C:
			return true
		case <-a.stopc:
			t.Stop()
			return false
		}
	}
	for {
		if !a.collect(s) {
			a.idle.Store(true)
			if !a.collect(s) { // a kick may have come before idle was set
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
		if len(a.wait) > 0 {
			a.waiting.Store(true)
			a.poll(time.Now()) // a write may have ended before waiting was set
			for len(a.wait) > 0 {
				t.Reset(ackCheck)
				select {
				case <-a.wrote:
				case <-t.C:
				case <-a.stopc:
					t.Stop()
					a.waiting.Store(false)
					return
				}
				a.poll(time.Now())
			}
			t.Stop()
			a.waiting.Store(false)
		}
		for _, k := range a.cands {
			k.c.acked = k.seq
			a.buf = wire.AppendU64(a.buf[:0], wire.TypeAck, k.seq)
			k.c.sendControl(a.buf)
		}
		clear(a.cands)
		if !sleep(ackInterval) {
			return
		}
	}
}

// collect takes the numbers to acknowledge, and the channels their
// messages could reach: theirs and those they propagate to.
func (a *acker) collect(s *Server) bool {
	clear(a.cands)
	a.cands, a.chans = a.cands[:0], a.chans[:0]
	m := s.byName.Load()
	if m == nil {
		return false
	}
	for _, ch := range *m {
		found := false
		ch.mu.Lock()
		for c := range ch.conns {
			if c.version < wire.VersionAcks || c.legacy {
				continue
			}
			if seq := c.routed.Load(); seq > c.acked {
				a.cands = append(a.cands, ackCand{c, seq})
				found = true
			}
		}
		ch.mu.Unlock()
		if found {
			a.addChan(ch)
			for _, t := range ch.settings.Load().targets {
				a.addChan(t)
			}
		}
	}
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

// snapshot notes, for each agent of the channels collected, the batch its
// writer must finish for what its outbox holds now to be written.
func (a *acker) snapshot() {
	a.scope = a.scope[:0]
	for _, ch := range a.chans {
		ch.mu.Lock()
		for c := range ch.conns {
			a.scope = append(a.scope, c)
		}
		ch.mu.Unlock()
	}
	now := time.Now()
	a.wait = a.wait[:0]
	for _, c := range a.scope {
		c.omu.Lock()
		need := c.takes + c.convTakesLocked() // conv: a legacy agent's first messages (convert)
		if len(c.obuf) > 0 {
			need++
		}
		closing := c.droppingLocked()
		c.omu.Unlock()
		w := c.batches.Load()
		if c.ackStuck != 0 {
			if c.ackStuck == c.progress.Load()+1 {
				continue // still stuck: not waited for
			}
			c.ackStuck = 0
		}
		if !closing && w < need {
			a.wait = append(a.wait, ackWait{c: c, need: need, last: c.progress.Load(), since: now})
		}
	}
	clear(a.scope)
}

// droppingLocked reports whether the server is disconnecting c or
// dropping messages for it: closing, discarding until its Welcome, stalls
// used up (senders no longer pause for it: what does not fit its outbox
// is dropped, or it is disconnected), its outbox full since the writer
// last took it, or drops it has not been told of yet. Acknowledgements do not wait for such a recipient: it
// costs a sender no more than its bounded pauses (issue 10, item 5).
// c.omu is held.
func (c *conn) droppingLocked() bool {
	return c.closing || c.discarding || c.stalled || c.full.Load() != 0 || c.dropped.Load() != c.told
}

// poll drops from the wait list the recipients done with: written,
// dropped for or closing, or given up on.
func (a *acker) poll(now time.Time) {
	keep := a.wait[:0]
	for _, w := range a.wait {
		wr := w.c.batches.Load()
		if wr >= w.need {
			continue
		}
		w.c.omu.Lock()
		closing := w.c.droppingLocked()
		w.c.omu.Unlock()
		if closing {
			continue
		}
		if pr := w.c.progress.Load(); pr != w.last {
			w.last, w.since = pr, now
		} else if now.Sub(w.since) >= ackGiveUp {
			w.c.ackStuck = w.last + 1
			continue
		}
		keep = append(keep, w)
	}
	clear(a.wait[len(keep):])
	a.wait = keep
}
