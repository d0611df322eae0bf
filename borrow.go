package netcluster

import (
	"bytes"
	"math"
)

// Borrowed messages (WithBorrowedMessages): the reader's message and data
// slabs go back to it once every handler of every message in them has
// run, so a dense stream allocates nothing per message and the collector
// has nothing to collect. A subscriber of 128-byte messages otherwise
// allocates 232 bytes a message, and Go's collector then takes about half
// its CPU (BENCHMARKS.md, "The subscriber's CPU per message").
//
// How a slab travels, and why it is safe: the reader takes messages and
// data from its current slabs, and new slabs from its stock (the spares
// it took at its last pushBatch, topped up). A slab it has passed is
// retired, and goes to the queue with the batch being built (pushBatch):
// every message of a retired slab is in that batch or an earlier one.
// The dispatcher takes every batch queued at once (popAll), with the
// slabs retired with them; when it comes back to popAll it has run every
// handler of those batches, so it clears their message slabs and hands
// them to the queue's spares, which the reader takes at its next
// pushBatch. Each hand-over is under the queue's mutex, so the handlers'
// reads happen before the reader's next writes.
//
// What never comes from the lent slabs, because it outlives its batch:
// requests (a handler may Reply after it returns), replayed messages
// (Agent.Replay returns them; a WithReplay listener gets them after the
// batches they came in), the live messages a WithReplay listener holds
// while its replay runs (copied, holdLive), and the agent's own messages
// delivered in memory (Local, from Emit's own allocator).

// WithBorrowedMessages makes the messages an agent receives from the
// server borrowed, not given: a handler's *Message and its Data are
// valid only until the handler returns. After that the agent reuses
// their memory for messages that arrive later, so a stream of messages
// costs no heap allocation and no garbage collection per message (the
// subscriber of BenchmarkReceiveAgentBorrowed: 0 allocations per message,
// where each costs 232 bytes of heap without the option).
//
// Under the option a handler that keeps a message, or its Data, past its
// return, or hands it to another goroutine, must keep a copy: m.Clone(),
// or its own copy of m.Data. The strings of a message (Event, Channel,
// Agent, Node) are never reused and may be kept. Every handler of a
// message sees the same *Message, one after the other, and must not
// modify it.
//
// Exceptions, which stay the handler's to keep as without the option: a
// request (m.IsRequest()), which may be answered with Reply after the
// handler returns; the messages that Agent.Replay returns and that a
// WithReplay listener gets from the history. A program should not count
// on any other message, the agent's own (Local) included, outliving its
// handler.
//
// Memory stays bounded: the slabs in use are those of the messages queued
// for handlers (bounded by WithQueueSize), and those kept for reuse are
// an eighth of the queue size, but at least 128 KiB and at most 2 MiB
// (spareSlabs; up to about three times that for a while after
// a reconnection).
func WithBorrowedMessages() Option { return func(o *options) { o.borrow = true } }

// Clone returns a copy of m that its caller owns, its Data copied: under
// WithBorrowedMessages, what a handler keeps past its return.
func (m *Message) Clone() *Message {
	c := *m
	c.Data = bytes.Clone(m.Data)
	return &c
}

// spareSlabs is how many slabs of each kind an agent whose queue holds
// limit bytes (WithQueueSize) keeps for reuse at most, made by its reader
// or handed back: those of an eighth of the queue, from 4 to 64 (1 MiB)
// of each kind. A busy stream has some 760 messages between two popAll
// calls of the dispatcher (5 message slabs and 6 data slabs of 128-byte
// data), but a dispatcher descheduled for a while, on a busy machine,
// takes many more at once: past the bound, the reader makes slabs that
// are not reused, and the dispatcher leaves them to the collector.
func spareSlabs(limit int) int {
	return min(64, max(4, limit/8/2/dataSlab))
}

// slabs is a set of whole slabs.
type slabs struct {
	msgs [][]Message
	data [][]byte
}

// moveTo appends s's slabs to dst, up to maxMsgs message slabs and
// maxData data slabs in dst (the others are left to the collector), and
// empties s, keeping its arrays.
func (s *slabs) moveTo(dst *slabs, maxMsgs, maxData int) {
	for _, m := range s.msgs {
		if len(dst.msgs) < maxMsgs {
			dst.msgs = append(dst.msgs, m)
		}
	}
	for _, d := range s.data {
		if len(dst.data) < maxData {
			dst.data = append(dst.data, d)
		}
	}
	clear(s.msgs)
	clear(s.data)
	s.msgs, s.data = s.msgs[:0], s.data[:0]
}

// all is moveTo's bound for slabs that must all move.
const all = math.MaxInt

// clearMsgs zeroes s's message slabs, whose handlers have all run: the
// reader writes a Message field by field, counting on zero (view, again),
// and a spare slab must keep nothing alive. It runs on the dispatcher,
// which has time to spare where the reader has none. s may be nil.
func (s *slabs) clearMsgs() {
	if s == nil {
		return
	}
	for _, m := range s.msgs {
		clear(m)
	}
}

// recycler is what the reader's recvAlloc needs to recycle its slabs:
// which of them it has passed since the last batch it handed over. The
// reader takes slabs from recvAlloc.stock (message and bytes pop it,
// inlined) and makes new ones only when it is empty; stock's arrays keep
// the slabs taken, past their length, until retire looks at them. A slab
// made new by message or bytes is not tracked, and left to the
// collector: stock is topped up at each batch so that it rarely is.
type recycler struct {
	msgs    []Message // the tracked message slab in use at the last retire, whole, or nil
	data    []byte    // the tracked data slab in use, likewise
	nmsgs   int       // len(stock.msgs) after the last trade
	ndata   int       // len(stock.data) likewise
	made    [2]int    // message and data slabs topUp made, up to spareSlabs each
	retired slabs     // passed since the last trade: they go with the next batch
}

// The stock a reader has after each batch: with maxBatch (256) messages
// a batch, 2 message slabs of 157 and 3 data slabs of 16 KiB cover a
// batch of data up to 128 bytes, besides what is left of the slabs in
// use. Larger data passes more data slabs, and makes the rest new.
const (
	minStockMsgs = 2
	minStockData = 3
)

// retire, before a batch is handed over, finds the tracked slabs the
// reader has passed: every message of theirs is in that batch or an
// earlier one.
func (r *recvAlloc) retire() {
	c := r.rec
	taken := r.stock.msgs[len(r.stock.msgs):c.nmsgs]
	c.msgs = retireSlabs(&c.retired.msgs, c.msgs, taken, r.msgs)
	clear(taken)
	takenData := r.stock.data[len(r.stock.data):c.ndata]
	c.data = retireSlabs(&c.retired.data, c.data, takenData, r.data)
	clear(takenData)
}

// retireSlabs appends to to the slab cur and those taken after it, except
// the one that left (what is left of the slab in use) is in, which it
// returns.
func retireSlabs[T any](to *[][]T, cur []T, taken [][]T, left []T) (inUse []T) {
	retire := func(s []T) {
		switch {
		case s == nil:
		case len(left) > 0 && &s[len(s)-1] == &left[len(left)-1]:
			inUse = s
		default:
			*to = append(*to, s)
		}
	}
	retire(cur)
	for _, s := range taken {
		retire(s)
	}
	return inUse
}

// topUp, after a batch is handed over, makes the stock of slabs up to
// its minimum, while fewer than budget of each kind have been made.
func (r *recvAlloc) topUp(budget int) {
	c := r.rec
	for len(r.stock.msgs) < minStockMsgs && c.made[0] < budget {
		r.stock.msgs = append(r.stock.msgs, make([]Message, msgSlab))
		c.made[0]++
	}
	for len(r.stock.data) < minStockData && c.made[1] < budget {
		r.stock.data = append(r.stock.data, make([]byte, dataSlab))
		c.made[1]++
	}
	c.nmsgs, c.ndata = len(r.stock.msgs), len(r.stock.data)
}

// tradeLocked, for pushBatch, queues the slabs r retired with the batch
// pushed and gives r the spares. Call with q.mu held.
func (q *queue) tradeLocked(r *recvAlloc) {
	r.rec.retired.moveTo(&q.lent, all, all)
	q.spare.moveTo(&r.stock, all, all) // (bounded: handedLocked)
	r.rec.nmsgs, r.rec.ndata = len(r.stock.msgs), len(r.stock.data)
}

// handedLocked, for popAll, makes the slabs the dispatcher has handled
// (s, cleared) spares, up to spareSlabs of each kind. Call with q.mu held.
func (q *queue) handedLocked(s *slabs) {
	n := spareSlabs(q.limit)
	s.moveTo(&q.spare, n, n)
}

// takenLocked, for popAll, gives the dispatcher the slabs of the batches
// it takes. Call with q.mu held.
func (q *queue) takenLocked(s *slabs) { q.lent.moveTo(s, all, all) }
