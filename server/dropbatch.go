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
// batched. Each drop
// still costs the sender a load of the agent's full and an increment: 100
// silent listeners beside a healthy pair (issue 10, item 5) cost it some
// 4 ns each per message rather than an atomic add each. The channel's drop
// count is not batched (deliverLocal).

// dropBatchMax is the most drops a slot holds before they are added.
const dropBatchMax = 1024

// dropBatch is a sender's uncounted drops, one slot per recipient of the
// match they are for. Only the sender's reader uses it.
type dropBatch struct {
	of  []*conn // the match (an index's answers are never changed in place)
	n   []uint32
	any bool // a slot is not 0
}

// slots returns the slots for match, adding the drops held for another
// match first.
func (b *dropBatch) slots(match []*conn) []uint32 {
	if len(match) != len(b.of) || len(match) > 0 && &match[0] != &b.of[0] {
		b.flush()
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
	if !b.any {
		return
	}
	for i, k := range b.n {
		if k != 0 {
			b.of[i].addDrops(k)
			b.n[i] = 0
		}
	}
	b.any = false
}

// addDrops counts k drops for c, as k dropFasts would.
func (c *conn) addDrops(k uint32) {
	if n := c.dropped.Add(uint64(k)); n/1024 != (n-uint64(k))/1024 {
		c.dropWarnSome()
	}
}
