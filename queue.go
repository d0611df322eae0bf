package netcluster

import "sync"

// queue holds received messages until the handler goroutine takes them.
// Messages from the server wait while the queue is over its bound;
// messages from the agent's own Emit never wait (a handler may emit, and
// must not deadlock on its own queue). The reader adds messages in batches
// and the handler goroutine takes them all at once, so a busy stream costs
// one lock and at most one wake-up per batch, not per message.
type queue struct {
	mu       sync.Mutex
	ready    sync.Cond // the consumer waits for items
	space    sync.Cond // producers wait for room
	items    []item
	bytes    int
	limit    int
	closed   bool
	consumer bool // the consumer is waiting
	waiting  int  // producers waiting for room
	holds    int  // while positive, producers do not wait (see hold)
}

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
	n := 0
	for _, it := range items {
		n += size(it)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for wait && q.bytes > 0 && q.bytes+n > q.limit && q.holds == 0 && !q.closed {
		q.waiting++
		q.space.Wait()
		q.waiting--
	}
	if q.closed {
		return false
	}
	q.items = append(q.items, items...)
	q.bytes += n
	if q.consumer {
		q.ready.Signal()
	}
	return true
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

// popAll waits for items and moves them all to dst; ok is false once the
// queue is closed.
func (q *queue) popAll(dst []item) (items []item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.consumer = true
		q.ready.Wait()
		q.consumer = false
	}
	if q.closed {
		return dst, false
	}
	// Hand over the backing array and keep dst's for the next pushes.
	items, q.items = q.items, dst[:0]
	q.bytes = 0
	if q.waiting > 0 {
		q.space.Broadcast()
	}
	return items, true
}

// close discards what is queued and releases every waiter.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.bytes = nil, 0
	q.ready.Broadcast()
	q.space.Broadcast()
	q.mu.Unlock()
}

// itemOverhead is what a queued message costs besides its data.
const itemOverhead = 64

func size(it item) int {
	if it.msg == nil {
		return 0
	}
	return itemOverhead + len(it.msg.Data)
}
