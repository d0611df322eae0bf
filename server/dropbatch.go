package server

// Drops counted in batches: a sender whose messages go to agents with
// full outboxes (that read nothing) counts its drops for them in slots of
// its own, without atomics, and adds them to the agents' counters (dropped)
// before its reader reads from the socket again (all it read is acted on:
// frameReader) or acts on a frame other than a message (a Ping's Pong
// comes after them), before its next message is queued for such an agent
// (told in order for that sender: a message of another sender queued
// meanwhile may come before the Dropped frame, docs/PROTOCOL.md), every
// 1024 drops, when the sender's listeners change,
// and when it disconnects; a message read when nothing follows it is not
// batched. The channel's drop count is not batched (deliverLocal).
//
// The sender also remembers which recipients it found full (knownFull):
// while no outbox of the channel has stopped being marked full since
// (channel.fullGen), and its message does not fit in the room any of them
// had, the message is dropped for all of them at once, one count for all
// (skip) that their slots get later, without a look at each: 100 silent
// listeners beside a healthy pair (issue 10, item 5) cost the sender a
// load and two adds per message, not a load of each agent's mark.

// dropBatchMax is the most drops a slot holds before they are added.
const dropBatchMax = 1024

// dropBatch is a sender's uncounted drops, one slot per recipient of the
// match they are for. Only the sender's reader uses it.
type dropBatch struct {
	of    []*conn // the match (an index's answers are never changed in place)
	n     []uint32
	any   bool // a slot is not 0
	known knownFull
}

// knownFull is what a sender knows of the recipients of its match (of)
// whose outboxes were marked full (conn.full) when it last looked at each:
// their marks are unchanged while their channel's fullGen is.
type knownFull struct {
	valid bool
	gen   uint64  // the channel's fullGen before the marks were read
	full  []int32 // the indexes in of of those found full for the message then
	live  []int32 // of the others, the sender excepted
	room  int     // the most room left (fullRoom) among the native agents of full; -1 if none
	lroom int     // among the legacy ones
	skip  uint32  // messages dropped for every one of full, not yet in its slot
	high  uint32  // the most drops a slot of full holds
}

// slots returns the slots for match, adding the drops held for another
// match first.
func (b *dropBatch) slots(match []*conn) []uint32 {
	if len(match) != len(b.of) || len(match) > 0 && &match[0] != &b.of[0] {
		b.flush()
		b.known.valid = false
		b.of = match
		if cap(b.n) < len(match) {
			b.n = make([]uint32, len(match))
		}
		b.n = b.n[:len(match)]
	}
	return b.n
}

// flush adds every slot's drops to its agent's count.
func (b *dropBatch) flush() {
	b.settle()
	if !b.any {
		return
	}
	for i, k := range b.n {
		if k != 0 {
			b.of[i].addDrops(k)
			b.n[i] = 0
		}
	}
	b.any, b.known.high = false, 0
}

// skips reports whether the message fd describes is dropped for every
// recipient known full, as deliverLocal would find looking at each: gen is
// their channel's fullGen now. If so, it counts the drops (in skip).
func (b *dropBatch) skips(fd *fullDrop, gen uint64) bool {
	k := &b.known
	if !k.valid || k.gen != gen ||
		k.room >= 0 && !fd.over(k.room, false) || k.lroom >= 0 && !fd.over(k.lroom, true) {
		return false
	}
	if len(k.full) > 0 {
		if k.skip++; k.skip+k.high == dropBatchMax {
			b.settle() // a slot at dropBatchMax is added
		}
	}
	return true
}

// settle adds skip to the slots of the recipients known full.
func (b *dropBatch) settle() {
	k := &b.known
	if k.skip == 0 {
		return
	}
	k.high = 0
	for _, i := range k.full {
		n := b.n[i] + k.skip
		if n >= dropBatchMax {
			b.of[i].addDrops(n)
			n = 0
		}
		b.n[i] = n
		k.high = max(k.high, n)
	}
	k.skip = 0
	b.any = true
}

// relearn forgets the recipients known full, to note them again as the
// caller looks at each recipient of the match (learnFull, learnLive) for
// a message; gen is their channel's fullGen, read before their marks.
func (b *dropBatch) relearn(gen uint64) {
	b.settle()
	k := &b.known
	k.valid, k.gen = true, gen
	k.full, k.live = k.full[:0], k.live[:0]
	k.room, k.lroom, k.high = -1, -1, 0
}

// learnFull notes that the i-th recipient's mark was v, full for the
// message, and that its slot holds n drops now.
func (b *dropBatch) learnFull(i int, v int64, n uint32) {
	k := &b.known
	k.full = append(k.full, int32(i))
	if room, legacy := fullRoom(v); legacy {
		k.lroom = max(k.lroom, room)
	} else {
		k.room = max(k.room, room)
	}
	k.high = max(k.high, n)
}

// learnLive notes that the i-th recipient was not full for the message.
func (b *dropBatch) learnLive(i int) { b.known.live = append(b.known.live, int32(i)) }

// countDrop counts a drop for c, the i-th recipient, in its slot, and
// returns what the slot holds.
func (b *dropBatch) countDrop(i int, c *conn) uint32 {
	if b.n[i] == dropBatchMax-1 {
		c.addDrops(dropBatchMax)
		b.n[i] = 0
		return 0
	}
	b.n[i]++
	b.any = true
	return b.n[i]
}

// addDrops counts k drops for c, as k dropFasts would.
func (c *conn) addDrops(k uint32) {
	if n := c.dropped.Add(uint64(k)); n/1024 != (n-uint64(k))/1024 {
		c.dropWarnSome()
	}
}
