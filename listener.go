package netcluster

import (
	"sync/atomic"
)

// Listener is a handler registered with On or Once. Off removes exactly
// it.
type Listener struct {
	agent   *Agent
	pattern string
	handler Handler
	once    bool
	off     atomic.Bool
	group   string // a queue listener's group (OnQueue), else ""
	sid     uint32 // a queue listener's membership id

	// replaying is set while its WithReplay replay runs: live messages
	// wait in held, to follow the replayed ones. Both are the dispatch
	// goroutine's after the listener is added.
	replaying bool
	held      []*Message
	heldBytes int // of held, counted as the queue counts (size)
	// abandoned is set when its replay is abandoned (holdLive): the
	// reader discards the replayed messages still to come.
	abandoned atomic.Bool
}

// Pattern returns the listener's pattern.
func (l *Listener) Pattern() string { return l.pattern }

// Off removes the listener: its handler is not called for any message
// dispatched after Off returns (one running already finishes). It reports
// whether this call removed it; later calls, and calls for a Once listener
// that has fired, return false.
func (l *Listener) Off() bool {
	if !l.off.CompareAndSwap(false, true) {
		return false
	}
	l.agent.removeListener(l)
	return true
}
