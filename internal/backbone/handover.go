package backbone

import (
	"maps"
	"strings"
)

// A reload that reopens the backbone (a changed nats block or durable
// setting) runs a new Backbone beside the old one for a moment, as the
// same server: the same node id. Receivers know a publisher by its node
// id, epoch and sequence numbers, so the new one's publications must not
// start the numbers again: receivers would drop them as duplicates (20
// of 20 after 20 sent before the reload, on a durable and on a plain
// channel alike). TakeSends hands the numbering over.

// TakeSends makes b, a Backbone opened to replace from (a reload), go on
// from from's publications, before b publishes anything (call it before
// b is used):
//
//   - Plain channels: b's publisher starts the epoch after from's, so
//     receivers start its numbers afresh, from either Backbone's
//     messages, while the two overlap.
//   - Each durable channel of both: what from has queued and not yet in
//     flight moves to b, numbered as from numbered it, and from's sends
//     from now on go to b (a sender that read the old Backbone just
//     before the reload), numbered on; from stores what it had in flight,
//     and b stores nothing before that store ended. So the stream holds
//     every message once, in emit order, with one publisher's numbers
//     without a gap or a repeat. A durable channel only from has keeps
//     its queue, dropped (counted) when from closes.
func (b *Backbone) TakeSends(from *Backbone) {
	// The numbers first: takeSends sets stored for what it moves.
	b.TakeNumbers(from.Numbers())
	for name, d := range b.durables {
		if o := from.durables[name]; o != nil {
			d.takeSends(o)
		}
	}
}

// Numbers is where a Backbone's publications got to, those of the
// Backbones it replaced included: its plain publisher's epoch and each
// durable channel's last sequence number.
type Numbers struct {
	epoch uint32
	seqs  map[string]uint64
}

// Numbers returns where b's publications got to. A server that closes
// its Backbone for good (a reload without one) keeps it for the next
// Backbone it opens, if any (TakeNumbers): with the same node id, that
// one must not start the numbers again either (20 of 20 dropped as
// duplicates by the other servers, plain or durable). Taken once b is
// closed, it holds every number b gave.
func (b *Backbone) Numbers() *Numbers {
	n := &Numbers{epoch: b.pub.lastEpoch.Load(), seqs: maps.Clone(b.carried)}
	if n.seqs == nil {
		n.seqs = make(map[string]uint64)
	}
	for name, d := range b.durables {
		d.mu.Lock()
		n.seqs[name] = max(n.seqs[name], d.seq)
		d.mu.Unlock()
	}
	return n
}

// TakeNumbers makes b, a Backbone of the same node id as the one n was
// taken from, go on from n's numbers (call it before b is used): its
// plain publisher starts the epoch after n's, its durable channels number
// on from n's, and it carries the numbers of the channels it has not
// durable to the next one.
func (b *Backbone) TakeNumbers(n *Numbers) {
	if n == nil {
		return
	}
	b.pub.mu.Lock()
	b.pub.epoch = max(b.pub.epoch, n.epoch+1)
	b.pub.lastEpoch.Store(b.pub.epoch)
	b.pub.mu.Unlock()
	for name, seq := range n.seqs {
		d := b.durables[name]
		if d == nil {
			if b.carried == nil {
				b.carried = make(map[string]uint64)
			}
			b.carried[name] = max(b.carried[name], seq)
			continue
		}
		d.mu.Lock()
		if seq > d.seq {
			// All of them stored or dropped: what waitStored waits for.
			d.seq, d.stored = seq, max(d.stored, seq)
		}
		d.mu.Unlock()
	}
}

// takeSends takes o's queue but what is in flight, and its sends.
func (d *durable) takeSends(o *durable) {
	o.mu.Lock()
	if o.heir != nil || o.done {
		o.mu.Unlock()
		return
	}
	moved := o.queue[o.flight:] // the flight's items stay o's, and in o.queue's backing array
	size := 0
	for _, it := range moved {
		size += len(it.frame)
	}
	o.queue = o.queue[:o.flight:o.flight]
	o.bytes -= size
	seq := o.seq
	o.heir = d
	o.cond.Broadcast() // an idle publishLoop ends
	o.mu.Unlock()
	o.b.st.durableQueued.Add(-int64(size))

	if ob, nb := o.b.subj.base, d.b.subj.base; ob != nb {
		for i := range moved {
			moved[i].subj = nb + strings.TrimPrefix(moved[i].subj, ob)
		}
	}
	d.mu.Lock()
	d.queue = append(moved, d.queue...)
	d.bytes += size
	// d has numbered nothing (its Backbone is not in use yet); its stored
	// is where o's ended or will end, what waitStored waits for past it
	// (after).
	d.seq = max(d.seq, seq)
	d.stored = seq - uint64(len(moved))
	d.after = o.ended
	d.cond.Signal()
	d.mu.Unlock()
	d.b.st.durableQueued.Add(int64(size))
}
