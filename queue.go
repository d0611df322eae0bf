package netcluster

import "sync"

// queue holds received messages until the handler goroutine takes them.
// Messages from the server wait while the queue holds more than its bound
// of data bytes; messages from the agent's own Emit never wait (a handler
// may emit, and must not deadlock on its own queue).
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []item
	head   int
	bytes  int
	limit  int
	closed bool
}

type item struct {
	msg *Message
	err error // an asynchronous error for the error handler
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.cond.L = &q.mu
	return q
}

// push adds an item. If wait is set it first waits while the queue is
// over its bound. It returns false if the queue is closed.
func (q *queue) push(it item, wait bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for wait && q.bytes > 0 && q.bytes+size(it) > q.limit && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return false
	}
	q.items = append(q.items, it)
	q.bytes += size(it)
	q.cond.Broadcast()
	return true
}

// popAll waits for items and moves them all to dst; ok is false once the
// queue is closed.
func (q *queue) popAll(dst []item) (items []item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return dst, false
	}
	// Hand over the backing array and keep dst's for the next pushes.
	items, q.items = q.items[q.head:], dst[:0]
	q.head, q.bytes = 0, 0
	q.cond.Broadcast()
	return items, true
}

// close discards what is queued and releases every waiter.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.head, q.bytes = nil, 0, 0
	q.cond.Broadcast()
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
