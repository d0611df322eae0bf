package backbone

import (
	"testing"
	"time"
)

// pendingLeft counts the earlier run's messages once each, by stream
// sequence: one that comes twice (a gap's retry sends it back) used to
// count twice, and the later ones went ahead before the last of the
// earlier ones was back.
func TestPendingLeftCountsMessages(t *testing.T) {
	now := time.Now()
	p := &pendingLeft{last: 10, left: 2, until: now.Add(gapWait)}
	for i, c := range []struct {
		seq  uint64
		hold bool
	}{{9, false}, {9, false}, {11, true}, {10, false}, {11, false}} {
		if got := p.hold(c.seq, now); got != c.hold {
			t.Fatalf("step %d: hold(%d) = %v, want %v (left %d)", i, c.seq, got, c.hold, p.left)
		}
	}
}

// What this run sent back for want of a listener comes first once a
// listener is there, in stream order, and holds the rest no longer than
// gapWait after the last was sent back (it may be gone from the stream).
func TestPendingLeftUnheard(t *testing.T) {
	now := time.Now()
	p := &pendingLeft{}
	p.unheard(5, now)
	p.unheard(7, now)
	for i, c := range []struct {
		seq  uint64
		hold bool
	}{{7, true}, {8, true}, {6, true}, {5, false}, {8, true}, {6, false}, {7, false}, {8, false}} {
		if got := p.hold(c.seq, now); got != c.hold {
			t.Fatalf("step %d: hold(%d) = %v, want %v", i, c.seq, got, c.hold)
		}
	}
	p.unheard(20, now)
	if !p.hold(21, now) {
		t.Fatal("21 went ahead of 20, sent back just now")
	}
	if p.hold(21, now.Add(gapWait+time.Millisecond)) {
		t.Fatal("21 still held past gapWait")
	}
}
