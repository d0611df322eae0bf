package netcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/router"
	"github.com/netcluster/netcluster/internal/wire"
)

// testSender returns an agent as Connect leaves it on a connection of
// the current protocol version, without its goroutines: the test plays
// its writer (sendQueue) and the server's acknowledgements (onAck).
func testSender(t testing.TB) *Agent {
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	a := &Agent{
		channel: "bench", id: "pub-1", opts: defaultOptions(),
		wake: make(chan struct{}, 1), listeners: router.NewIndex[*Listener](),
		patterns: map[string]int{}, pings: map[uint64]chan error{}, calls: map[uint64]*pendingCall{},
		stream: 7,
	}
	a.head = wire.NewSeqMsgHead(a.stream, &wire.Msg{Channel: a.channel, Agent: a.id})
	a.attach(c1, wire.Welcome{Version: wire.VersionGaps, MaxFrame: wire.DefaultMaxFrame})
	return a
}

// writeOne is the writer's turn: it takes one batch and writes it whole.
func writeOne(q sendQueue, spare []byte) []byte {
	batch, _ := q.Take(spare[:0])
	if len(batch) == 0 {
		return spare
	}
	q.Wrote(batch, len(batch), nil)
	if q.Kept() {
		return nil
	}
	return batch
}

// TestEmitAllocatesNothing: a stream of 128-byte messages that Emit
// writes faster than the writer takes them (it queues chunks), with
// several batches kept between two acknowledgements, allocates nothing
// once its buffers exist: Emit reuses the chunks and the buffers that
// acknowledgements release.
func TestEmitAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	a := testSender(t)
	q := sendQueue{a}
	ctx := context.Background()
	data := make([]byte, 128)
	var spare []byte
	behind := 0 // the most buffers queued before out
	// Ten times 400 messages (70 KB: more than a chunk) and the writer's
	// turn, then its turn again and the acknowledgement of the batches
	// written.
	round := func() {
		for range 10 {
			for range 400 {
				if err := a.EmitRaw(ctx, "bench", data); err != nil {
					t.Fatal(err)
				}
			}
			behind = max(behind, len(a.queued))
			spare = writeOne(q, spare)
		}
		spare = writeOne(q, spare) // and one more: it keeps up
		a.onAck(a.takenLast)
	}
	for range 10 {
		round()
	}
	if n := testing.AllocsPerRun(20, round); n != 0 {
		t.Fatalf("%v allocations per 4,000 messages emitted", n)
	}
	if behind == 0 {
		t.Fatal("no buffer queued: the writer was not behind")
	}
}

// BenchmarkEmitBuffered measures Emit alone, without I/O: 128-byte
// messages into the send buffer, the writer's turn (no write) every 400
// and the server's acknowledgement every 4,000, as TestEmitAllocatesNothing.
func BenchmarkEmitBuffered(b *testing.B) {
	a := testSender(b)
	q := sendQueue{a}
	ctx := context.Background()
	data := make([]byte, 128)
	var spare []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := a.EmitRaw(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
		n++
		if n%400 == 0 {
			spare = writeOne(q, spare)
		}
		if n%4000 == 0 {
			spare = writeOne(q, spare)
			a.onAck(a.takenLast)
		}
	}
}

// TestQueuedSentAgainInOrder: after a write that fails halfway through a
// batch, with more buffers queued behind it and more emitted before the
// next connection, that connection gets every message not acknowledged,
// once each and in order: those of the batches kept, then the rest of the
// one that failed, the queued buffers and out.
func TestQueuedSentAgainInOrder(t *testing.T) {
	a := testSender(t)
	q := sendQueue{a}
	ctx := context.Background()
	data := make([]byte, 128)
	emit := func(n int) {
		for range n {
			if err := a.EmitRaw(ctx, "bench", data); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(2000) // 350 KB: five chunks queued
	if len(a.queued) < 3 {
		t.Fatalf("%d buffers queued, want 3 or more", len(a.queued))
	}
	writeOne(q, nil) // kept
	batch, _ := q.Take(nil)
	q.Wrote(batch, len(batch)/2, errors.New("broken pipe"))
	a.onAck(10)
	a.nc = nil
	emit(1000) // while disconnected: more queued
	if len(a.queued) == 0 {
		t.Fatal("nothing queued while disconnected")
	}
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	a.attach(c1, wire.Welcome{Version: wire.VersionGaps, MaxFrame: wire.DefaultMaxFrame})
	next := uint64(11)
	check := func(buf []byte) {
		for f := range wire.Frames(buf) {
			if f.Type != wire.TypeSeqMsg {
				continue
			}
			if _, seq, _ := wire.SeqOf(f.Payload); seq != next {
				t.Fatalf("message %d where %d was due", seq, next)
			}
			next++
		}
	}
	for _, b := range a.queued {
		check(b.buf)
	}
	check(a.out)
	if next != 3001 || a.seq != 3000 {
		t.Fatalf("messages sent again up to %d; the last emitted is %d", next-1, a.seq)
	}
	if a.outLast != 3000 {
		t.Fatalf("outLast %d, want 3000", a.outLast)
	}
}

// TestFailedWriteResentInItsOrder: after a write that fails partway, the
// rest of the batch goes out again on the next connection in its own
// order, whatever its frames: a call or an unnumbered message (left in
// out by a server of protocol version 2) between two numbered messages
// stays between them. Kept whole, the batch's numbered messages went out
// again first, and the call after the messages emitted after it.
func TestFailedWriteResentInItsOrder(t *testing.T) {
	call := func(a *Agent) {
		a.out = wire.AppendCall(a.out, 99, &wire.Msg{Channel: "bench", Agent: a.id, Event: "ask"})
	}
	plain := func(a *Agent) { a.out = wire.AppendMsg(a.out, &wire.Msg{Channel: "bench", Agent: a.id, Event: "old"}) }
	for _, tt := range []struct {
		name  string
		batch []string // "seq", "call", "msg": emitted in this order
		fails int      // the write ends after this many frames
		want  string   // the resendable frames on the next connection
	}{
		{"call", []string{"seq", "call", "seq"}, 1, "seq1 call seq2"},
		{"call first", []string{"call", "seq", "seq"}, 0, "call seq1 seq2"},
		{"unnumbered", []string{"msg", "msg", "seq"}, 1, "msg seq1"},
		{"written whole but the last", []string{"seq", "seq", "call"}, 2, "seq1 seq2 call"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := testSender(t)
			q := sendQueue{a}
			a.mu.Lock()
			a.out = a.out[:0] // what attach queued: the stream and its listens
			a.mu.Unlock()
			for _, k := range tt.batch {
				switch k {
				case "seq":
					if err := a.EmitRaw(context.Background(), "ev", []byte("x")); err != nil {
						t.Fatal(err)
					}
				case "call":
					a.mu.Lock()
					call(a)
					a.mu.Unlock()
				case "msg":
					a.mu.Lock()
					plain(a)
					a.mu.Unlock()
				}
			}
			batch, _ := q.Take(nil)
			n := 0
			i := 0
			for f := range wire.Frames(batch) {
				if i == tt.fails {
					break
				}
				n += len(f.Raw)
				i++
			}
			q.Wrote(batch, n+1, errors.New("broken pipe")) // one byte of the next frame
			a.mu.Lock()
			a.nc = nil
			c1, c2 := net.Pipe()
			t.Cleanup(func() { c1.Close(); c2.Close() })
			a.attach(c1, wire.Welcome{Version: wire.VersionGaps, MaxFrame: wire.DefaultMaxFrame})
			var got []string
			for f := range wire.Frames(a.unqueue(nil)) {
				switch f.Type {
				case wire.TypeSeqMsg:
					_, seq, _ := wire.SeqOf(f.Payload)
					got = append(got, fmt.Sprintf("seq%d", seq))
				case wire.TypeCall:
					got = append(got, "call")
				case wire.TypeMsg:
					got = append(got, "msg")
				}
			}
			a.mu.Unlock()
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("sent again: %s; want %s", s, tt.want)
			}
		})
	}
}
