package server

import (
	"github.com/netcluster/netcluster/internal/wire"
)

// route delivers a message emitted on ch by src (nil for a message from
// the network) to ch's other agents that listen to its event, then to the
// listening agents of every channel ch propagates to. Each agent is in one
// channel and ch is never its own target, so each agent gets the message
// at most once; a propagated message is not propagated again. A message
// from a local agent on a channel with propagatetonet also goes to the
// network; one from the network never goes back.
//
// raw is the whole Msg frame, forwarded as it is: routing decodes only the
// header fields in v and allocates nothing.
func (ch *channel) route(src *conn, raw []byte, v *wire.MsgView) {
	d := delivery{raw: raw, v: v}
	if src != nil {
		d.memo = &src.sending().memo // route runs on src's reader goroutine
	}
	ch.routeDelivery(src, &d)
}

// routeDelivery routes a Msg or a Call: to plain listeners as route says,
// and in ch and in each channel it propagates to, to one member of every
// queue group whose pattern matches (the sender's own memberships
// included). A Call that reached no agent able to answer, and did not go
// to the network, gets NoResponders.
func (ch *channel) routeDelivery(src *conn, d *delivery) {
	v := d.v
	if src != nil {
		s := src.sending()
		if d.memo != nil {
			d.qmemo = &s.qmemo
		}
		d.scratch = &s.lscratch
		d.fulls = &s.fulls
		if src.idleReader() {
			d.inPlace = inPlaceMax
		}
	}
	st := ch.settings.Load()
	if !d.counted {
		ch.stats.msgsIn.Add(1)
		ch.stats.bytesIn.Add(uint64(len(v.Data)))
	}
	if st.DumpToConsole {
		ch.srv.console.dump(ch.name, v)
	}
	// Calls cross the NATS backbone too, except on durable channels: a
	// request stored and replayed later would be answered to no one.
	toBackbone := src != nil && st.PropagateToNet && (!d.call || st.Durable == nil) && ch.srv.bb.Load() != nil
	if toBackbone && ch.srv.natsGroups(st) {
		d.netGroups = true // NATS picks the members, here too
	}
	if toBackbone {
		src.backboneBusy() // before the match: a replay waits for the hand-over
	}
	full := ch.deliverLocal(src, d) // a recipient whose outbox is nearly full
	for _, t := range st.targets {
		if f := t.deliverLocal(nil, d); f != nil {
			full = f
		}
	}
	toNet := src != nil && st.PropagateToNet && ch.srv.net.Load() != nil
	if toNet {
		ch.srv.sendNet(ch, d.msgFrame())
	}
	if toBackbone {
		ch.srv.sendBackbone(src, ch, d)
	}
	if d.call {
		ch.noResponders(src, d, toNet || toBackbone)
		if toBackbone && !toNet && d.answerers == 0 {
			ch.srv.probeBackbone(ch, src, d)
		}
	}
	if src != nil {
		// Every nearly full plain recipient is paused for, the draining
		// ones until they make progress, the others within the sender's
		// credit: pausing only for one would overrun the others. What
		// src read before for the backbone goes first (bbRun).
		if full != nil || len(*d.fulls) > 0 {
			src.flushBackbone()
		}
		stalled := false
		for _, r := range *d.fulls {
			src.stall(r)
			stalled = stalled || r == full
		}
		if full != nil && !stalled {
			src.stall(full)
		}
		clear(*d.fulls)
		*d.fulls = (*d.fulls)[:0]
	}
	d.full = full
}

// deliverLocal gives d to ch's agents whose listeners match its event,
// except src, and to one member of each of ch's matching queue groups. It
// returns a recipient whose outbox is nearly full, or nil: one whose
// writer made progress since a pause for it was last in vain if there is
// one, so that the sender keeps pace with a slow reader when stuck ones
// are nearly full as well.
func (ch *channel) deliverLocal(src *conn, d *delivery) (full *conn) {
	var stuck *conn
	lim := ch.srv.limits.Load()
	fd := fullDropOf(d, lim) // worked out once for all recipients
	match := d.match(ch.index, src)
	var b *dropBatch // the sender's drops counted in batches (dropbatch.go)
	if fd.on && d.memo != nil && src != nil && !src.idleReader() {
		b = &src.sending().drops // else its last message for now: counted at once
		b.slots(match)
	} else if src != nil {
		src.flushDrops() // what it batched before is told before this message
	}
	offer := func(i int, c *conn) {
		nearlyFull, vain := ch.offer(b, i, c, d, &fd, lim)
		switch {
		case nearlyFull && vain:
			stuck = c
		case nearlyFull:
			full = c
		}
		if nearlyFull && d.fulls != nil {
			*d.fulls = append(*d.fulls, c)
		}
	}
	if gen := ch.fullGen.Load(); b != nil && b.skips(&fd, gen) {
		// Dropped for the recipients known full (counted in b), given to
		// the others.
		d.drops += uint64(len(b.known.full))
		for _, i := range b.known.live {
			offer(int(i), match[i])
		}
	} else {
		if b != nil {
			b.relearn(gen)
		}
		for i, c := range match {
			if c == src {
				continue
			}
			if b != nil {
				if v := c.full.Load(); fd.fullAt(v) {
					b.learnFull(i, v, b.countDrop(i, c))
					d.drops++
					continue
				}
				b.learnLive(i)
			}
			offer(i, c)
		}
	}
	if full == nil {
		full = stuck
	}
	d.countOut(ch)
	if d.drops > 0 {
		d.reached += int(d.drops)
		ch.stats.dropped.Add(d.drops)
		d.drops = 0
	}
	if !ch.queues.Empty() && !d.netGroups {
		if f := ch.routeGroups(src, d); f != nil {
			full = f
		}
	}
	return full
}

// offer gives d to c, the i-th recipient of the match: it drops it if c's
// outbox is full, counted in b's slot i (or at once if b is nil), else it
// queues it (queue's results). A drop for a recipient b has as not full
// has b look at each recipient again for the next message.
func (ch *channel) offer(b *dropBatch, i int, c *conn, d *delivery, fd *fullDrop, lim *limits) (nearlyFull, vain bool) {
	if fd.full(c) {
		d.drops++
		if b == nil {
			c.dropFast()
			return false, false
		}
		b.countDrop(i, c)
		b.known.valid = false
		return false, false
	}
	if b != nil && b.n[i] != 0 {
		c.addDrops(b.n[i]) // told before the message (appendDroppedLocked)
		b.n[i] = 0
	}
	return c.queue(d, lim)
}
