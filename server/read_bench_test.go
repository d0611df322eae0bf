package server

import (
	"bufio"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// cycle is an endless stream: its bytes over and over.
type cycle struct {
	b   []byte
	off int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.b[c.off:])
	c.off = (c.off + n) % len(c.b)
	return n, nil
}

// readSetup is routeSetup with a reader for src over an endless stream of
// the Msg frame, as the agent's batches bring it.
func readSetup(t testing.TB, n int) (*conn, []byte) {
	t.Helper()
	_, src, frame, _ := routeSetup(t, n)
	var stream []byte
	for len(stream)+len(frame) <= readBufSize {
		stream = append(stream, frame...)
	}
	src.rd = wire.NewReader(bufio.NewReaderSize(&cycle{b: stream}, readBufSize), wire.DefaultMaxFrame)
	return src, frame
}

// readOne reads the next frame and acts on it, as readNative does.
func readOne(t testing.TB, c *conn) {
	f, err := c.rd.Next()
	if err == nil {
		err = c.onFrame(f)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The read path of a message (frame reader, origin check, routing,
// outbox) allocates nothing.
func TestReadAllocatesNothing(t *testing.T) {
	src, _ := readSetup(t, 1)
	for range 1000 {
		readOne(t, src)
	}
	time.Sleep(10 * time.Millisecond)
	if n := testing.AllocsPerRun(10000, func() { readOne(t, src) }); n != 0 {
		t.Fatalf("reading and routing a message allocates %.2f times", n)
	}
	if got := src.msgsIn.Load(); got < 11000 { // AllocsPerRun runs once more
		t.Fatalf("%d messages in, want 11000", got)
	}
}

// BenchmarkReadRoute is the server's whole path for one 128-byte message
// from an agent to one listener in its channel and one in a channel it
// propagates to: frame reader, origin check, routing, outboxes (written by
// their writers to sinks).
func BenchmarkReadRoute(b *testing.B) {
	src, frame := readSetup(b, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		readOne(b, src)
	}
}
