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
		batches, ok := q.popAll(done, nil)
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
	next, ok := q.pushBatch(true, batch, nil)
	if !ok || len(next) != 0 || cap(next) != newBatchCap {
		t.Fatalf("pushBatch = %d of %d, %v; want a new empty array (nothing emptied yet), true", len(next), cap(next), ok)
	}
	second := &next[:1][0]
	if _, ok := q.pushBatch(true, append(next, msg(2)), nil); !ok {
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
	reused, ok := q.pushBatch(true, []item{msg(5)}, nil)
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
	if _, ok := q.popAll(nil, nil); ok {
		t.Fatal("popAll on a closed queue")
	}
	if _, ok := q.pushBatch(true, []item{msg(6)}, nil); ok {
		t.Fatal("pushBatch on a closed queue")
	}
}

// The reader appends a message's item by writing its pointer alone
// (appendMsg), so an array given back must be zero past its length: the
// err, sid, queued and replay of the items dispatch cleared
// (clearItems) must not come back with a later message, nor any
// message stay alive in it.
func TestBatchArraysComeBackZero(t *testing.T) {
	t.Parallel()
	q := newQueue(1 << 20)
	var batch []item
	batch = append(batch, item{err: &GapError{}})
	batch = append(batch, item{msg: &Message{Event: "q"}, sid: 7, queued: true})
	batch = append(batch, item{replay: &pendingReplay{}})
	batch = appendMsg(batch, &Message{Event: "m"})
	if _, ok := q.pushBatch(true, batch, nil); !ok {
		t.Fatal("closed")
	}
	first := &batch[0]
	batches, ok := q.popAll(nil, nil)
	if !ok || len(batches) != 1 || len(batches[0]) != 4 {
		t.Fatalf("popAll = %d batches, %v", len(batches), ok)
	}
	for _, b := range batches {
		clearItems(b) // as dispatch does
	}
	q.push(false, item{msg: &Message{Event: "x"}})
	if batches, ok = q.popAll(batches, nil); !ok { // gives the first array back
		t.Fatal("closed")
	}
	got, ok := q.pushBatch(true, []item{{msg: &Message{}}}, nil)
	if !ok || cap(got) == 0 || &got[:1][0] != first {
		t.Fatal("the first batch's array did not come back")
	}
	for i, it := range got[:cap(got)] {
		if it != (item{}) {
			t.Fatalf("item %d of an array given back is %+v, want zero", i, it)
		}
	}
	for i := range 4 {
		got = appendMsg(got, &Message{Event: fmt.Sprint(i)})
	}
	for i, it := range got {
		if it.err != nil || it.sid != 0 || it.queued || it.replay != nil || it.msg.Event != fmt.Sprint(i) {
			t.Fatalf("appendMsg's item %d is %+v", i, it)
		}
	}
}

// appendMsg appends in order, growing a full array like append.
func TestAppendMsg(t *testing.T) {
	t.Parallel()
	var b []item
	var want []*Message
	for range 3*newBatchCap + 1 {
		m := &Message{}
		want = append(want, m)
		b = appendMsg(b, m)
	}
	if len(b) != len(want) {
		t.Fatalf("len %d, want %d", len(b), len(want))
	}
	for i := range b {
		if b[i] != (item{msg: want[i]}) {
			t.Fatalf("item %d is %+v, want the %d-th message alone", i, b[i], i)
		}
	}
}
