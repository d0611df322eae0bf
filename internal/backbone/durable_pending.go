package backbone

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What a durable consumer's run holds back so that a listener gets the
// channel's messages in stream order: what an earlier run left in flight,
// and what found no listener in this one (durable.go's consume).

// unheardWait is how long a message that found no listener waits before
// it comes again: while the consumer runs on with no listener (until it
// stops), each such message comes back this often; once a listener is
// back, it comes within this.
const unheardWait = 200 * time.Millisecond

// pendingLeft is what an earlier run of this server left delivered and
// not acknowledged (it stopped with them in flight). JetStream redelivers
// them only after ackWait, and delivers what comes after them at once: a
// new receiver would start its sequences from the later ones and drop the
// earlier ones, when they came back, as duplicates. So the later ones
// wait (are asked for again) until the earlier ones are back, or for up
// to gapWait (acknowledgements the earlier run sent as it stopped can
// make the count too high). The earlier ones are counted once each, by
// stream sequence, however often they come (a gap's retry, no listener).
//
// It also holds this run's messages that found no listener (unheard):
// what comes after the first of them waits until they are back, up to
// gapWait after the last was sent back, so that a listener that comes
// gets them in stream order, and a receiver that had not seen their
// publisher yet does not start after them.
type pendingLeft struct {
	last  uint64 // the stream sequence delivered last before this run
	left  int    // how many of those up to last are still to come back
	until time.Time
	back  map[uint64]bool // those up to last that came back (counted)

	unheardSeqs  map[uint64]bool // this run's messages sent back for want of a listener
	unheardUntil time.Time
}

// leftPending reads c's state before this run consumes from it.
func (d *durable) leftPending(ctx context.Context, c jetstream.Consumer) (*pendingLeft, error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &pendingLeft{last: info.Delivered.Stream, left: info.NumAckPending, until: time.Now().Add(gapWait)}, nil
}

// hold reports whether the message of stream sequence seq (0: unknown)
// is to wait for earlier ones: the earlier run's, or this run's unheard.
func (p *pendingLeft) hold(seq uint64, now time.Time) bool {
	if seq == 0 {
		return false
	}
	if len(p.unheardSeqs) > 0 {
		switch first := p.firstUnheard(); {
		case now.After(p.unheardUntil):
			clear(p.unheardSeqs) // gone from the stream (max age, max bytes)
		case seq > first:
			return true // unheard or not: after the first unheard
		case seq == first:
			delete(p.unheardSeqs, seq) // back; it may be sent back again
		}
	}
	if p.left <= 0 {
		return false
	}
	if seq <= p.last {
		if !p.back[seq] { // one of them, back: once each
			if p.back == nil {
				p.back = make(map[uint64]bool)
			}
			p.back[seq] = true
			p.left--
		}
		if p.left <= 0 {
			p.back = nil
		}
		return false
	}
	if now.After(p.until) {
		p.left, p.back = 0, nil
		return false
	}
	return true
}

// unheard notes that the message of stream sequence seq was sent back
// for want of a listener.
func (p *pendingLeft) unheard(seq uint64, now time.Time) {
	if seq == 0 {
		return
	}
	if p.unheardSeqs == nil {
		p.unheardSeqs = make(map[uint64]bool)
	}
	p.unheardSeqs[seq] = true
	p.unheardUntil = now.Add(gapWait)
}

// firstUnheard returns the lowest of unheardSeqs (at most the consumer's
// MaxAckPending of them).
func (p *pendingLeft) firstUnheard() uint64 {
	first := uint64(0)
	for s := range p.unheardSeqs {
		if first == 0 || s < first {
			first = s
		}
	}
	return first
}
