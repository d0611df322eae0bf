package server

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// A slow consumer that the server disconnects is told why, even when it
// reads again only after longer than lingerTimeout: the server cuts the
// write in flight at a frame's end and waits for it to take the error.
func TestSlowConsumerToldAfterPause(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"outbuffer": 65536, "slowconsumer": "disconnect", "channels": {"A": {}}}`)
	slow := ctlDialRaw(t, dir, "A", "slow")
	slow.write(wire.AppendListen(nil, wire.TypeListen, "x"))
	slow.sync(1)
	src := ctlAgent(t, dir, "A")
	ctx := ctlCtx(t)
	payload := strings.Repeat("p", 100)
	for i := 0; ; i++ {
		if ci, _ := srv.Channel("A"); ci.Slow > 0 {
			break
		}
		if i == 200000 {
			t.Fatal("the slow agent was never disconnected")
		}
		if err := src.Emit(ctx, "x", payload); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * lingerTimeout)
	start := time.Now()
	msgs := 0
	for {
		slow.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := slow.rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("stream ended after %d messages and %v without an error frame: %v", msgs, time.Since(start), err)
			}
			t.Fatal(err)
		}
		switch f.Type {
		case wire.TypeMsg:
			msgs++
			continue
		case wire.TypeError:
			e, _ := wire.ParseError(f.Payload)
			if e.Code != wire.CodeSlowConsumer {
				t.Fatalf("error %d %q, want a slow consumer error", e.Code, e.Text)
			}
			t.Logf("told after %d messages, %v", msgs, time.Since(start))
			return
		}
	}
}

// stuckSink is a connection whose writes block until it is closed: an
// agent that never reads.
type stuckSink struct {
	sink
	closed chan struct{}
}

func newStuckSink() stuckSink { return stuckSink{closed: make(chan struct{})} }

func (s stuckSink) Write([]byte) (int, error) { <-s.closed; return 0, net.ErrClosed }
func (s stuckSink) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// stallServer is a server with channel A and outbuffer 64 KiB, and a Msg
// frame of 1000 data bytes emitted on A.
func stallServer(t *testing.T) (*Server, *channel, []byte, wire.MsgView) {
	t.Helper()
	s := lifecycleServer(t, func(c *config.Config) { c.OutBuffer = 64 << 10 })
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 1000)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	return s, s.channels["A"], frame, v
}

// stuckRecipient returns a connection of ch whose writer runs into a
// stuckSink, its outbox nearly full.
func stuckRecipient(t *testing.T, s *Server, ch *channel, frame []byte, v *wire.MsgView) *conn {
	t.Helper()
	r := newConn(ch, newStuckSink())
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	t.Cleanup(r.close)
	r.deliver(&delivery{raw: frame, v: v})
	waitUntil(t, "the writer takes a frame it cannot write", func() bool {
		r.omu.Lock()
		defer r.omu.Unlock()
		return len(r.obuf) == 0
	})
	for i := 0; !r.deliver(&delivery{raw: frame, v: v}); i++ {
		if i > 200 {
			t.Fatal("outbox never nearly full")
		}
	}
	return r
}

// The pauses that recipients making no progress cost a sender are bounded
// for the sender, not for each recipient: ten stuck recipients cost about
// stallBudget in all, not ten times it.
func TestStallBoundedPerSender(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	src := newConn(ch, sink{})
	const n = 10
	var stuck []*conn
	var total time.Duration
	began := time.Now()
	for range n {
		r := stuckRecipient(t, s, ch, frame, &v)
		stuck = append(stuck, r)
		for range stallBudget / stallMax {
			start := time.Now()
			src.stall(r)
			total += time.Since(start)
		}
	}
	// The pauses in vain, as each recipient counts what it was charged (a
	// call's duration would count a call the machine delayed as a pause).
	pauses := 0
	for _, r := range stuck {
		r.omu.Lock()
		pauses += int(r.stalls / stallMax)
		r.omu.Unlock()
	}
	// stallBudget of credit, what it refilled meanwhile, and one pause for
	// each new recipient.
	refill := time.Since(began) / stallRefill
	if limit := int((stallBudget+refill)/stallMax) + n; pauses > limit {
		t.Fatalf("%d stuck recipients cost the sender %d pauses (%v), want at most %d", n, pauses, total, limit)
	}
	// And the time they took: unbounded, they would take n*stallBudget.
	if total >= n*stallBudget/2 {
		t.Fatalf("%d stuck recipients took the sender %v of pauses, want less than %v", n, total, n*stallBudget/2)
	}
	t.Logf("%d stuck recipients cost the sender %d pauses, %v", n, pauses, total)
}

// The outbox bound counts the batch the writer is writing: an agent that
// stopped reading holds at most outbuffer bytes, not twice that.
func TestOutboxBoundIncludesBatchInFlight(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	r := newConn(ch, newStuckSink())
	t.Cleanup(r.close)
	accepted := 0
	// Fill the queue before the writer runs: it then takes all of it as
	// one batch, which it cannot write.
	for range 1000 {
		r.deliver(&delivery{raw: frame, v: &v})
	}
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	waitUntil(t, "the writer takes the outbox", func() bool {
		r.omu.Lock()
		defer r.omu.Unlock()
		return len(r.obuf) == 0
	})
	for range 1000 {
		before := r.delivered()
		r.deliver(&delivery{raw: frame, v: &v})
		accepted += int(r.delivered() - before)
	}
	if held := r.delivered() * uint64(len(frame)); held > 64<<10 {
		t.Fatalf("the agent holds %d bytes (%d accepted after the writer took its batch), bound %d", held, accepted, 64<<10)
	}
	if info := r.info(); info.Queued > 64<<10 {
		t.Fatalf("Queued %d, bound %d", info.Queued, 64<<10)
	}
}

// A legacy envelope is not made for an agent that drops the message.
func TestLegacyEnvelopeNotMadeForDrop(t *testing.T) {
	_, ch, _, _ := stallServer(t)
	data := `"` + strings.Repeat("j", 998) + `"` // JSON: the envelope's size is known without making it
	frame := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "src", Event: "ev", Data: []byte(data)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	if got := len(wire.AppendLegacy(nil, &v)); got != legacyMinLen(&v) {
		t.Fatalf("legacyMinLen %d, envelope %d", legacyMinLen(&v), got)
	}
	r := newConn(ch, newStuckSink()) // no writer: the queue only grows
	r.legacy = true
	t.Cleanup(r.close)
	for i := 0; r.dropped.Load() == 0; i++ {
		if i > 1000 {
			t.Fatal("no drop")
		}
		d := delivery{raw: frame, v: &v}
		r.deliver(&d)
	}
	d := delivery{raw: frame, v: &v}
	r.deliver(&d)
	if d.hasLegacy {
		t.Fatal("an envelope was made for a message dropped")
	}
}
