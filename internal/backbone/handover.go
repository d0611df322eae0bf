package backbone

import "strings"

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
	b.pub.mu.Lock()
	b.pub.epoch = from.pub.lastEpoch.Load() + 1
	b.pub.lastEpoch.Store(b.pub.epoch)
	b.pub.mu.Unlock()
	for name, d := range b.durables {
		if o := from.durables[name]; o != nil {
			d.takeSends(o)
		}
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
