package batchwriter

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeQueue is a Queue like the agent's and the server's: a buffer under
// a lock, a wake channel, and a closing flag that stops the writer once
// the buffer is empty. It records what the writer does with it.
type fakeQueue struct {
	wake chan struct{}
	idle chan struct{} // gets a value on each Idle

	mu      sync.Mutex
	out     []byte
	closing bool
	spares  [][]byte // the spare of each Take that handed over a batch
	wrote   []wrote
}

type wrote struct {
	n   int
	err error
}

func newFakeQueue() *fakeQueue {
	return &fakeQueue{wake: make(chan struct{}, 1), idle: make(chan struct{}, 10)}
}

// add queues b, waking the writer if the queue was empty.
func (q *fakeQueue) add(b ...byte) {
	q.mu.Lock()
	was := len(q.out)
	q.out = append(q.out, b...)
	q.mu.Unlock()
	if was == 0 {
		q.signal()
	}
}

func (q *fakeQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close has the writer stop once it has written what is queued.
func (q *fakeQueue) close() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.signal()
}

func (q *fakeQueue) Take(spare []byte) ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(spare) != 0 {
		panic("Take got a spare that is not empty")
	}
	batch := q.out
	if len(batch) == 0 {
		return nil, q.closing
	}
	q.out = spare
	q.spares = append(q.spares, spare)
	return batch, false
}

func (q *fakeQueue) Wrote(batch []byte, n int, err error) {
	q.mu.Lock()
	q.wrote = append(q.wrote, wrote{n, err})
	q.mu.Unlock()
}

func (q *fakeQueue) Idle() {
	q.mu.Lock()
	q.out = Trim(q.out, 0)
	q.mu.Unlock()
	q.idle <- struct{}{}
}

// gateWriter records each Write; while gated, each Write first waits for
// a value on gate.
type gateWriter struct {
	gate   chan struct{}
	writes chan []byte // a copy of each write
	err    error       // returned by every Write, after half the bytes
}

func (w *gateWriter) Write(p []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	if w.err != nil {
		w.writes <- bytes.Clone(p[:len(p)/2])
		return len(p) / 2, w.err
	}
	w.writes <- bytes.Clone(p)
	return len(p), nil
}

// start runs the writer and returns a channel with its result.
func start(w *gateWriter, q *fakeQueue, stop chan struct{}, idleAfter time.Duration) chan error {
	done := make(chan error, 1)
	go func() { done <- run(w, q, q.wake, stop, idleAfter, false) }()
	return done
}

func result(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not return")
		return nil
	}
}

// TestRunBatches has the writer blocked in a write while more frames are
// queued: the next write carries all of them, and everything arrives in
// order before Take's stop ends the writer.
func TestRunBatches(t *testing.T) {
	t.Parallel()
	q := newFakeQueue()
	w := &gateWriter{gate: make(chan struct{}), writes: make(chan []byte, 100)}
	done := start(w, q, nil, time.Hour)
	q.add(1)
	w.gate <- struct{}{} // the writer is in its first Write
	for b := byte(2); b <= 9; b++ {
		q.add(b)
	}
	close(w.gate)
	if got := <-w.writes; !bytes.Equal(got, []byte{1}) {
		t.Fatalf("first write %v, want [1]", got)
	}
	if got := <-w.writes; !bytes.Equal(got, []byte{2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("second write %v, want 2..9 in one batch", got)
	}
	q.add(10)
	q.close()
	if err := result(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := <-w.writes; !bytes.Equal(got, []byte{10}) {
		t.Fatalf("last write %v, want [10] before stopping", got)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.wrote) != 3 {
		t.Fatalf("Wrote called %d times, want 3", len(q.wrote))
	}
	for i, r := range q.wrote {
		if r.err != nil || r.n == 0 {
			t.Fatalf("Wrote %d: %+v", i, r)
		}
	}
}

// TestRunSwapsBuffers checks the double buffering: from the third batch
// on, each Take gets back the array of the batch before last.
func TestRunSwapsBuffers(t *testing.T) {
	t.Parallel()
	q := newFakeQueue()
	w := &gateWriter{writes: make(chan []byte, 100)}
	done := start(w, q, nil, time.Hour)
	var batches [][]byte
	for i := range 6 {
		q.mu.Lock()
		q.out = append(q.out, byte(i))
		batches = append(batches, q.out)
		q.mu.Unlock()
		q.signal()
		<-w.writes
	}
	q.close()
	if err := result(t, done); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.spares) != 6 {
		t.Fatalf("%d batches taken, want 6", len(q.spares))
	}
	for i := 1; i < 6; i++ {
		if cap(q.spares[i]) == 0 || &q.spares[i][:1][0] != &batches[i-1][0] {
			t.Fatalf("Take %d: spare is not the array of batch %d", i, i-1)
		}
	}
}

// TestRunWriteError: a failed write is reported to Wrote with what was
// written, and ends the writer with the write's error.
func TestRunWriteError(t *testing.T) {
	t.Parallel()
	q := newFakeQueue()
	boom := errors.New("boom")
	w := &gateWriter{writes: make(chan []byte, 10), err: boom}
	done := start(w, q, nil, time.Hour)
	q.add(1, 2, 3, 4)
	if err := result(t, done); !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want %v", err, boom)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.wrote) != 1 || q.wrote[0].n != 2 || !errors.Is(q.wrote[0].err, boom) {
		t.Fatalf("Wrote got %+v, want one call with 2 bytes and the error", q.wrote)
	}
}

// TestRunIdle: a writer with nothing to write asks for the buffers back
// once, drops its own spare, and still writes what comes later.
func TestRunIdle(t *testing.T) {
	t.Parallel()
	q := newFakeQueue()
	w := &gateWriter{writes: make(chan []byte, 10)}
	done := start(w, q, nil, 5*time.Millisecond)
	q.add(make([]byte, 1000)...)
	<-w.writes
	select {
	case <-q.idle:
	case <-time.After(10 * time.Second):
		t.Fatal("Idle not called")
	}
	q.mu.Lock()
	if q.out != nil {
		t.Error("the queue's buffer was not trimmed")
	}
	q.mu.Unlock()
	select {
	case <-q.idle:
		t.Fatal("Idle called again with nothing written in between")
	case <-time.After(50 * time.Millisecond):
	}
	q.add(7)
	if got := <-w.writes; !bytes.Equal(got, []byte{7}) {
		t.Fatalf("write after idle %v, want [7]", got)
	}
	q.close()
	if err := result(t, done); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if last := q.spares[len(q.spares)-1]; cap(last) != 0 {
		t.Fatalf("after idle the writer kept a spare of %d bytes", cap(last))
	}
}

// TestRunStop: closing stop ends a writer that is waiting, before or
// after it went idle.
func TestRunStop(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		idle bool
	}{{"waiting", false}, {"idle", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newFakeQueue()
			w := &gateWriter{writes: make(chan []byte, 10)}
			stop := make(chan struct{})
			idleAfter := time.Hour
			if tt.idle {
				idleAfter = time.Millisecond
			}
			done := start(w, q, stop, idleAfter)
			q.add(1)
			<-w.writes
			if tt.idle {
				<-q.idle
			}
			close(stop)
			if err := result(t, done); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTrim(t *testing.T) {
	t.Parallel()
	big := make([]byte, 0, 100)
	for _, tt := range []struct {
		name string
		buf  []byte
		keep int
		nil  bool
	}{
		{"nil", nil, 10, true},
		{"empty, small", make([]byte, 0, 10), 10, false},
		{"empty, large", big, 10, true},
		{"not empty, large", big[:1], 10, false},
		{"empty, large, kept", big, 100, false},
	} {
		if got := Trim(tt.buf, tt.keep); (got == nil) != tt.nil || got != nil && &got[:1][0] != &tt.buf[:1][0] {
			t.Errorf("%s: Trim(cap %d, len %d, keep %d) = cap %d", tt.name, cap(tt.buf), len(tt.buf), tt.keep, cap(got))
		}
	}
}

// TestRunUntilIdle: the writer gives its buffers back and returns ErrIdle
// once it has had nothing to write for idleAfter, after writing what was
// queued; stop ends it before that.
func TestRunUntilIdle(t *testing.T) {
	t.Parallel()
	q := newFakeQueue()
	w := &gateWriter{writes: make(chan []byte, 10)}
	done := make(chan error, 1)
	go func() { done <- run(w, q, q.wake, nil, 5*time.Millisecond, true) }()
	q.add(1, 2)
	if got := <-w.writes; !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("wrote %v, want [1 2]", got)
	}
	if err := result(t, done); !errors.Is(err, ErrIdle) {
		t.Fatalf("got %v, want ErrIdle", err)
	}
	select {
	case <-q.idle:
	default:
		t.Fatal("returned idle without calling Idle")
	}
	stop := make(chan struct{})
	close(stop)
	go func() { done <- run(w, q, q.wake, stop, time.Hour, true) }()
	if err := result(t, done); err != nil {
		t.Fatalf("stopped writer: %v, want nil", err)
	}
}
