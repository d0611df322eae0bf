package server

import (
	"testing"
)

// A run queued beside a batch in flight grows the outbox's array only to
// the room left, as queue does (947e8c3): the array and the batch being
// written together stay within outbuffer, not up to twice it.
func TestBackboneRunHoldsTheOutboxBound(t *testing.T) {
	s, ch, frame, _ := stallServer(t)
	lim := s.limits.Load()
	r := newConn(ch, newStuckSink())
	t.Cleanup(r.close)
	var run []byte
	for range 4 {
		run = append(run, frame...)
	}
	var wakes []*conn
	for r.queued() < lim.outBuffer*3/4 {
		if ok, _, _, _ := r.queueRun(run, 4, lim, &wakes); !ok {
			t.Fatal("a run refused before the outbox was three quarters full")
		}
	}
	// Its writer takes the whole outbox and is stuck writing it.
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	r.writer().wake <- struct{}{}
	waitUntil(t, "the writer takes the outbox", func() bool {
		r.omu.Lock()
		defer r.omu.Unlock()
		return len(r.obuf) == 0 && r.inflight > 0
	})
	for {
		ok, _, _, _ := r.queueRun(run, 4, lim, &wakes)
		if !ok {
			break
		}
	}
	r.omu.Lock()
	held, inflight := cap(r.obuf), r.inflight
	r.omu.Unlock()
	if held+inflight > lim.outBuffer {
		t.Fatalf("the outbox holds an array of %d bytes beside %d in flight: %d, past outbuffer %d", held, inflight, held+inflight, lim.outBuffer)
	}
}

// queued is what c's outbox holds.
func (c *conn) queued() int {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.queuedLocked()
}
