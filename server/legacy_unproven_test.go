package server

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// Silent connections that turn legacy with their outboxes nearly full do
// not cost a sender its pause credit: their writers write a socket
// buffer's worth of the backlog whether the agent reads or not, which
// proves nothing of it. Each of them used to cost a pause in vain
// (stallMax), and 100 of them a sender's whole credit (issue 10, item 5).
// A legacy listener that does read is paused for again once its writer
// has written more than that.
func TestLegacyDecisionSpendsNoCredit(t *testing.T) {
	s, ch, _, _ := stallServer(t) // outbuffer 64 KiB
	// JSON data: envelopes the size of the frames.
	frame := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "src", Event: "ev", Data: []byte(`"` + strings.Repeat("p", 1000) + `"`)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	const n = 10
	undecidedFull := func(w *bufSink) *conn {
		r := newConn(ch, w)
		t.Cleanup(r.close)
		r.omu.Lock()
		r.undecided = true
		r.omu.Unlock()
		for range 100 {
			r.deliver(&delivery{raw: frame, v: &v})
		}
		r.toLegacy()
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			r.writeLoop()
		}()
		return r
	}
	silent := make([]*conn, n)
	sinks := make([]*bufSink, n)
	for i := range silent {
		sinks[i] = newBufSink(defaultSockBuf) // a socket buffer, then nothing
		silent[i] = undecidedFull(sinks[i])
	}
	src := newConn(ch, sink{})
	send := func() {
		for _, r := range silent {
			if r.deliver(&delivery{raw: frame, v: &v}) {
				src.stall(r)
			}
		}
	}
	// Until every writer is blocked, its socket buffer full, and then
	// more than the outbox holds.
	for i, w := range sinks {
		for deadline := time.Now().Add(10 * time.Second); !w.blocked.Load(); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("silent connection %d: its writer wrote %d bytes, never blocked", i, w.n.Load())
			}
			send()
		}
	}
	for range 100 {
		send()
	}
	if c := src.stallCredit(); c < stallBudget-stallMax {
		t.Fatalf("%d silent connections turning legacy left the sender %v of pause credit, want %v", n, c, stallBudget)
	}

	// One that reads is paced once it has read more than that.
	reader := undecidedFull(&bufSink{limit: 1 << 62, closed: make(chan struct{}), delay: 200 * time.Microsecond})
	for deadline := time.Now().Add(10 * time.Second); !reader.deliver(&delivery{raw: frame, v: &v}); {
		if time.Now().After(deadline) {
			reader.omu.Lock()
			wrote, full := reader.wrote, reader.full.Load()
			reader.omu.Unlock()
			t.Fatalf("a reading legacy listener is never paused for: its writer wrote %d bytes, full %d, %d messages dropped", wrote, full, reader.dropped.Load())
		}
	}
	reader.omu.Lock()
	wrote := reader.wrote
	reader.omu.Unlock()
	if wrote < unprovenBufs*defaultSockBuf {
		t.Fatalf("paused for after %d bytes written, want more than %d", wrote, unprovenBufs*defaultSockBuf)
	}
	src.stall(reader)
}

// bufSink takes limit bytes, each write after delay, then blocks like
// a socket whose agent reads nothing, until closed.
type bufSink struct {
	sink
	limit   int64
	delay   time.Duration
	n       atomic.Int64
	blocked atomic.Bool
	closed  chan struct{}
}

func newBufSink(limit int64) *bufSink { return &bufSink{limit: limit, closed: make(chan struct{})} }

func (s *bufSink) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	if s.n.Load()+int64(len(p)) > s.limit {
		s.blocked.Store(true)
		<-s.closed
		return 0, net.ErrClosed
	}
	s.n.Add(int64(len(p)))
	return len(p), nil
}

func (s *bufSink) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// A legacy agent whose outbox was full only for the batch its writer was
// writing gets its messages again once that batch is written: it used to
// stay marked full with nothing queued, its writer idle, and every
// message after was dropped for it (a native agent is told of its drops,
// a frame that its writer takes, which cleared the mark).
func TestLegacyFullClearedWhenCaughtUp(t *testing.T) {
	s, ch, _, _ := stallServer(t) // outbuffer 64 KiB
	frame := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "src", Event: "ev", Data: []byte(`"` + strings.Repeat("p", 1000) + `"`)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	r := newConn(ch, slowSink{delay: 50 * time.Millisecond})
	t.Cleanup(r.close)
	r.omu.Lock()
	r.legacy = true
	r.omu.Unlock()
	for i := 0; r.dropped.Load() == 0; i++ { // the outbox fills, its writer not yet running
		if i > 1000 {
			t.Fatal("outbox never full")
		}
		r.deliver(&delivery{raw: frame, v: &v})
	}
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	locked := func(f func() bool) func() bool {
		return func() bool { r.omu.Lock(); defer r.omu.Unlock(); return f() }
	}
	waitUntil(t, "the writer writing the full outbox", locked(func() bool { return r.writing && len(r.obuf) == 0 }))
	dropped := r.dropped.Load()
	r.deliver(&delivery{raw: frame, v: &v}) // no room beside the batch in flight
	if r.dropped.Load() != dropped+1 || r.full.Load() == 0 {
		t.Fatalf("beside a full batch in flight: dropped %d, full %d; want 1 dropped, full", r.dropped.Load()-dropped, r.full.Load())
	}
	waitUntil(t, "the writer done, its outbox empty", locked(func() bool { return !r.writing && len(r.obuf) == 0 }))
	out := r.delivered()
	r.deliver(&delivery{raw: frame, v: &v})
	if r.delivered() != out+1 {
		t.Fatalf("a legacy agent whose writer caught up: its message dropped (full %d), want it queued", r.full.Load())
	}
}
