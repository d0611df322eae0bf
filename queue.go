package netcluster

import "sync"

// queue holds received messages until the handler goroutine takes them.
// Messages from the server wait while the queue is over its bound;
// messages from the agent's own Emit never wait (a handler may emit, and
// must not deadlock on its own queue). The reader hands over its messages
// in batches, as they are (the batch's array becomes the queue's), and the
// handler goroutine takes every batch at once, so a busy stream costs one
// lock and at most one wake-up per batch, not per message, and no copy:
// emptied batch arrays go back to the reader.
type queue struct {
	mu       sync.Mutex
	ready    sync.Cond // the consumer waits for items
	space    sync.Cond // producers wait for room
	batches  [][]item  // in order
	free     [][]item  // emptied batch arrays, for the reader's next batches
	bytes    int
	limit    int
	closed   bool
	consumer bool // the consumer is waiting
	waiting  int  // producers waiting for room
	holds    int  // while positive, producers do not wait (see hold)
	// Under WithBorrowedMessages (borrow.go): the reader's slabs retired
	// with the batches queued, and the handled ones for its reuse.
	lent, spare slabs
}

// maxFreeBatches bounds the emptied batch arrays a queue keeps: enough
// for the batches a busy reader queues while the handler goroutine runs
// the ones it took.
const maxFreeBatches = 16

type item struct {
	msg    *Message
	err    error  // an asynchronous error for the error handler
	sid    uint32 // the queue listener msg was given to, if queued
	queued bool
	replay *pendingReplay // a WithReplay listener's replay, ended
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.ready.L = &q.mu
	q.space.L = &q.mu
	return q
}

// push adds items. If wait is set it first waits while the queue is over
// its bound (a batch larger than the bound goes into an empty queue). It
// returns false if the queue is closed.
func (q *queue) push(wait bool, items ...item) bool {
	n := bytesOf(items)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.roomLocked(wait, n) {
		return false
	}
	if k := len(q.batches); k > 0 {
		q.batches[k-1] = append(q.batches[k-1], items...)
	} else {
		q.batches = append(q.batches, append(q.freeLocked(), items...))
	}
	q.addedLocked(n)
	return true
}

// pushBatch is push for the reader's batch, which it hands over, array
// and all. It returns an empty slice for the next batch (an array the
// handler goroutine emptied, or a new one), and false if the queue is
// closed. lend, under WithBorrowedMessages, is the reader's recvAlloc,
// which trades slabs (borrow.go); else it is nil.
func (q *queue) pushBatch(wait bool, batch []item, lend *recvAlloc) (next []item, ok bool) {
	n := bytesOf(batch)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.roomLocked(wait, n) {
		clear(batch)
		return batch[:0], false
	}
	q.batches = append(q.batches, batch)
	q.addedLocked(n)
	if lend != nil {
		q.tradeLocked(lend)
	}
	if next = q.freeLocked(); next == nil {
		next = make([]item, 0, newBatchCap)
	}
	return next, true
}

// newBatchCap is the capacity of a new batch array: a batch that needs
// more grows, and the grown array is what comes back for reuse.
const newBatchCap = 32

// freeLocked returns an emptied batch array, or nil.
func (q *queue) freeLocked() []item {
	k := len(q.free)
	if k == 0 {
		return nil
	}
	b := q.free[k-1]
	q.free[k-1] = nil
	q.free = q.free[:k-1]
	return b
}

func bytesOf(items []item) int {
	n := 0
	for i := range items {
		n += size(&items[i])
	}
	return n
}

// roomLocked waits, if wait is set, while n bytes more would put the queue
// over its bound; it reports whether the queue is still open.
func (q *queue) roomLocked(wait bool, n int) bool {
	for wait && q.bytes > 0 && q.bytes+n > q.limit && q.holds == 0 && !q.closed {
		q.waiting++
		q.space.Wait()
		q.waiting--
	}
	return !q.closed
}

// addedLocked counts n bytes added and wakes the consumer.
func (q *queue) addedLocked(n int) {
	q.bytes += n
	if q.consumer {
		q.ready.Signal()
	}
}

// hold lets producers past the bound until the returned func is called.
// A handler that waits for the server (Flush, Request) holds the queue:
// the reader must not stop at the bound while the only goroutine that
// drains it is waiting for the reader.
func (q *queue) hold() (release func()) {
	q.mu.Lock()
	q.holds++
	q.space.Broadcast()
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.holds--
		q.mu.Unlock()
	}
}

// popAll waits for items and returns every batch queued, in order; ok is
// false once the queue is closed. done is what the last popAll returned,
// handled: its arrays, whose items the caller has cleared (so that they
// keep no message alive), are reused. Under WithBorrowedMessages, lent
// holds the slabs of done (cleared: clearMsgs), which become spares, and
// gets those of the batches returned (borrow.go); else it is nil.
func (q *queue) popAll(done [][]item, lent *slabs) (batches [][]item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if lent != nil {
		q.handedLocked(lent)
	}
	for _, b := range done {
		if len(q.free) < maxFreeBatches && cap(b) > 0 {
			q.free = append(q.free, b[:0])
		}
	}
	clear(done)
	for len(q.batches) == 0 && !q.closed {
		q.consumer = true
		q.ready.Wait()
		q.consumer = false
	}
	if q.closed {
		return done[:0], false
	}
	batches, q.batches = q.batches, done[:0]
	q.bytes = 0
	if lent != nil {
		q.takenLocked(lent)
	}
	if q.waiting > 0 {
		q.space.Broadcast()
	}
	return batches, true
}

// close discards what is queued and releases every waiter.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.batches, q.free, q.bytes = nil, nil, 0
	q.lent, q.spare = slabs{}, slabs{}
	q.ready.Broadcast()
	q.space.Broadcast()
	q.mu.Unlock()
}

// itemOverhead is what a queued message costs besides its data.
const itemOverhead = 64

func size(it *item) int {
	if it.msg == nil {
		return 0
	}
	return itemOverhead + len(it.msg.Data)
}
