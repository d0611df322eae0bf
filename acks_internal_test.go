package netcluster

import (
	"fmt"
	"testing"
)

// TestOriginsDropDuplicates: a message number seen before from the same
// origin and stream is a duplicate; a new stream (a restarted sender) or
// another origin starts afresh.
func TestOriginsDropDuplicates(t *testing.T) {
	var o origins
	steps := []struct {
		ch, ag string
		stream uint32
		seq    uint64
		fresh  bool
	}{
		{"A", "s", 7, 1, true},
		{"A", "s", 7, 2, true},
		{"A", "s", 7, 2, false}, // sent again after a reconnection
		{"A", "s", 7, 1, false},
		{"B", "s", 7, 1, true}, // same id, other channel: another origin
		{"A", "t", 7, 2, true},
		{"A", "s", 7, 5, true}, // not listened to: 3 and 4 went elsewhere
		{"A", "s", 7, 4, false},
		{"A", "s", 9, 1, true}, // restarted: a new stream
		{"A", "s", 9, 1, false},
	}
	for i, s := range steps {
		if got, _ := o.fresh([]byte(s.ch), []byte(s.ag), s.stream, s.seq); got != s.fresh {
			t.Fatalf("step %d %+v: fresh %v", i, s, got)
		}
	}
}

// TestOriginsBounded: past maxOrigins the origin heard from longest ago
// is forgotten, so memory stays bounded whatever the number of senders.
func TestOriginsBounded(t *testing.T) {
	var o origins
	for i := range maxOrigins + 100 {
		o.fresh([]byte("A"), fmt.Appendf(nil, "a%d", i), 1, 1)
		o.fresh([]byte("A"), []byte("keep"), 1, uint64(i+1)) // heard from all along
	}
	if o.n != maxOrigins {
		t.Fatalf("%d origins remembered, want %d", o.n, maxOrigins)
	}
	if ok, _ := o.fresh([]byte("A"), []byte("keep"), 1, 1); ok {
		t.Fatal("the origin heard from all along was forgotten")
	}
	if ok, _ := o.fresh([]byte("A"), []byte("a0"), 1, 1); !ok {
		t.Fatal("the oldest origin was not forgotten")
	}
}

// TestOriginsAllocateNothing: a message from a known origin costs no
// allocation, whether it is the previous message's origin or not.
func TestOriginsAllocateNothing(t *testing.T) {
	var o origins
	ch, a, b := []byte("A"), []byte("a"), []byte("b")
	o.fresh(ch, a, 1, 1)
	o.fresh(ch, b, 1, 1)
	seq := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		o.fresh(ch, a, 1, seq)
		o.fresh(ch, b, 1, seq)
	}); n != 0 {
		t.Fatalf("%v allocations per pair of messages", n)
	}
}
