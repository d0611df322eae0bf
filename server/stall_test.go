package server

import (
	"testing"
	"time"
)

// A recipient that drains, however slowly, is waited for, not dropped for:
// the pauses it costs its sender are pacing, and a pause that ends before
// it made progress is given back when it does. Here the sender is much
// faster than its recipient for 40 of its batches, twice the sender's
// credit in pauses; the recipient loses nothing.
func TestStallDrainingRecipientNotDropped(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	src := newConn(ch, sink{})
	r := newConn(ch, slowSink{delay: 20 * time.Millisecond}) // reads, slowly
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	t.Cleanup(r.close)
	batches := r.progress.Load()
	for r.progress.Load()-batches < 40 {
		if r.deliver(&delivery{raw: frame, v: &v}) {
			src.stall(r)
		}
	}
	if n := r.dropped.Load(); n > 0 {
		t.Fatalf("%d messages dropped for a recipient that kept draining (%d delivered)", n, r.msgsOut.Load())
	}
}
