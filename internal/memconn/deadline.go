package memconn

import (
	"sync"
	"time"
)

// deadline is a read or write deadline: a channel closed when it passes.
// The zero value is not usable; see makeDeadline.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	passed  chan struct{} // closed once the deadline has passed
	stopped bool          // set by stop: no more timers
}

func makeDeadline() deadline {
	return deadline{passed: make(chan struct{})}
}

// set changes the deadline; the zero time means none. It reports false,
// doing nothing, after stop.
func (d *deadline) set(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: wait for it to close the channel
	}
	d.timer = nil
	closed := isClosed(d.passed)
	if t.IsZero() {
		if closed {
			d.passed = make(chan struct{})
		}
		return true
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.passed = make(chan struct{})
		}
		ch := d.passed
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return true
	}
	if !closed {
		close(d.passed)
	}
	return true
}

// stop stops the timer, if any, for good.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// wait returns a channel closed once the current deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

// expired reports whether the current deadline has passed.
func (d *deadline) expired() bool {
	return isClosed(d.wait())
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
