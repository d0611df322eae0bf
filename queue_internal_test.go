package netcluster

import (
	"fmt"
	"testing"
)

// The handler queue keeps the order of single items and of the reader's
// batches, hands batches over without copying, and gives the arrays the
// handler goroutine emptied back to the reader.
func TestQueueBatches(t *testing.T) {
	t.Parallel()
	q := newQueue(1 << 20)
	msg := func(i int) item { return item{msg: &Message{Event: fmt.Sprint(i)}} }
	// handle takes what is queued, as dispatch does, giving back done.
	handle := func(done [][]item) (events []string, batches [][]item) {
		batches, ok := q.popAll(done)
		if !ok {
			t.Fatal("closed")
		}
		for _, b := range batches {
			for i := range b {
				events = append(events, b[i].msg.Event)
				b[i] = item{}
			}
		}
		return events, batches
	}
	batch := []item{msg(0), msg(1)}
	first := &batch[0]
	next, ok := q.pushBatch(true, batch)
	if !ok || len(next) != 0 || cap(next) != newBatchCap {
		t.Fatalf("pushBatch = %d of %d, %v; want a new empty array (nothing emptied yet), true", len(next), cap(next), ok)
	}
	second := &next[:1][0]
	if _, ok := q.pushBatch(true, append(next, msg(2))); !ok {
		t.Fatal("closed")
	}
	q.push(false, msg(3))
	got, batches := handle(nil)
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("handled %v, want [0 1 2 3]", got)
	}
	if &batches[0][0] != first {
		t.Fatal("the reader's batch was copied")
	}
	q.push(false, msg(4))
	if got, batches = handle(batches); fmt.Sprint(got) != "[4]" {
		t.Fatalf("handled %v, want [4]", got)
	}
	// The arrays of the first batches are back: the reader gets one.
	reused, ok := q.pushBatch(true, []item{msg(5)})
	if !ok || len(reused) != 0 || cap(reused) == 0 || (&reused[:1][0] != first && &reused[:1][0] != second) {
		t.Fatalf("pushBatch gave back %d of %d, %v; want the array of one of the first batches, emptied", len(reused), cap(reused), ok)
	}
	for _, it := range reused[:cap(reused)] {
		if it.msg != nil {
			t.Fatal("an array given back still holds a message")
		}
	}
	if got, _ = handle(batches); fmt.Sprint(got) != "[5]" {
		t.Fatalf("handled %v, want [5]", got)
	}
	q.close()
	if _, ok := q.popAll(nil); ok {
		t.Fatal("popAll on a closed queue")
	}
	if _, ok := q.pushBatch(true, []item{msg(6)}); ok {
		t.Fatal("pushBatch on a closed queue")
	}
}
