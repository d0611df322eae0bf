package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// knownSetup makes channel A with an outbox bound of room bytes more than
// ten of frame (a Msg of 7000 bytes of data for event "ev"; the least
// bound is 64 KiB), n listeners
// of it whose outboxes hold ten of frame (no writer runs: the test takes
// for them), and a sender whose reader has more to read (its drops are
// batched, dropbatch.go).
func knownSetup(t testing.TB, n, room int) (ch *channel, src *conn, rs []*conn, frame []byte, v wire.MsgView) {
	t.Helper()
	frame = wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 7000)})
	v, _ = wire.ParseMsg(frame[wire.HeaderLen:])
	s := lifecycleServer(t, func(c *config.Config) { c.OutBuffer = 10*len(frame) + room })
	ch = s.channels["A"]
	for i := range n {
		r := newConn(ch, sink{})
		r.id = "r" + string(rune('a'+i))
		if _, ok := ch.join(r); !ok {
			t.Fatal("join")
		}
		if err := ch.index.Add(r, "ev"); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			r.deliver(&delivery{raw: frame, v: &v})
		}
		rs = append(rs, r)
	}
	src = newConn(ch, sink{}) // br nil: not idle
	src.id = "src"
	return ch, src, rs, frame, v
}

// takeAll has r's writer take its outbox and write it all.
func takeAll(r *conn) {
	q := outboxQueue{r}
	b, _ := q.Take(nil)
	q.Wrote(b, len(b), nil)
}

// A recipient a sender knows full (it skips it without a look) gets the
// sender's next message once its writer has taken its outbox: taking
// changes the channel's fullGen. Each drop is counted once.
func TestKnownFullGetsMessageAfterTake(t *testing.T) {
	ch, src, rs, frame, v := knownSetup(t, 3, 0)
	for range 5 {
		ch.route(src, frame, &v)
	}
	if k := src.snd.drops.known; !k.valid || len(k.full) != 3 {
		t.Fatalf("after 5 messages to 3 full outboxes the sender knows %d of them full (valid %v), want 3", len(k.full), k.valid)
	}
	r := rs[1]
	takeAll(r)
	out := r.delivered()
	ch.route(src, frame, &v)
	if got := r.delivered(); got != out+1 {
		t.Fatalf("the recipient whose writer took its outbox got %d of the next message, want 1 (dropped as known full)", got-out)
	}
	for range 20 {
		ch.route(src, frame, &v)
	}
	src.snd.drops.flush()
	var sum uint64
	for _, r := range rs {
		sum += r.dropped.Load()
		if in := r.delivered() + r.dropped.Load(); in != 10+26 {
			t.Errorf("%s: %d queued and %d dropped, want %d in all", r.id, r.delivered(), r.dropped.Load(), 10+26)
		}
	}
	if st := ch.stats.dropped.Load(); st != sum {
		t.Errorf("the channel counts %d drops, its agents %d", st, sum)
	}
}

// A message small enough for the room a recipient known full still has
// is queued for it: the sender's knowledge holds for messages larger than
// that room only.
func TestKnownFullTakesSmallerMessage(t *testing.T) {
	ch, src, rs, frame, v := knownSetup(t, 1, 600)
	r := rs[0]
	for range 3 {
		ch.route(src, frame, &v)
	}
	if k := src.snd.drops.known; !k.valid || len(k.full) != 1 || k.room != 600 {
		t.Fatalf("the sender knows %d full (valid %v, room %d), want 1 with 600 bytes of room", len(k.full), k.valid, k.room)
	}
	small := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 400)})
	sv, _ := wire.ParseMsg(small[wire.HeaderLen:])
	out := r.delivered()
	ch.route(src, small, &sv)
	if got := r.delivered(); got != out+1 {
		t.Fatalf("a %d-byte message for an outbox with 600 bytes of room: %d queued, want 1", len(small), got-out)
	}
	ch.route(src, frame, &v)
	src.snd.drops.flush()
	if d := r.dropped.Load(); d != 4 {
		t.Errorf("%d drops counted for the recipient, want 4", d)
	}
}

// Drops batched for recipients known full are added to each agent's count
// at each 1024th, as one at a time: also for a recipient that turned full
// after the others, its slot not at 0 when the sender learned it.
func TestKnownFullCountsEvery1024(t *testing.T) {
	ch, src, rs, frame, v := knownSetup(t, 2, 0)
	late := rs[1]
	takeAll(late) // room for ten more: full ten messages after the other
	const n = 3*dropBatchMax + 100
	for i := range n {
		ch.route(src, frame, &v)
		if i == 5 {
			takeAll(late) // and 10 more later, its slot not at 0
		}
	}
	for _, r := range rs {
		// Its first drop, found as it was queued (overflowLocked), is
		// counted at once; the sender batches the others.
		drops := n - (r.delivered() - 10)
		if want := 1 + (drops-1)/dropBatchMax*dropBatchMax; r.dropped.Load() != want {
			t.Errorf("%s: %d of its %d drops counted before the sender flushed, want %d", r.id, r.dropped.Load(), drops, want)
		}
	}
	src.snd.drops.flush()
	var sum uint64
	for _, r := range rs {
		if drops := n - (r.delivered() - 10); r.dropped.Load() != drops {
			t.Errorf("%s: %d drops counted, want %d", r.id, r.dropped.Load(), drops)
		}
		sum += r.dropped.Load()
	}
	if st := ch.stats.dropped.Load(); st != sum {
		t.Errorf("the channel counts %d drops, its agents %d", st, sum)
	}
}

// A sender's message to a healthy recipient beside 100 full outboxes
// allocates nothing.
func TestRouteBesideFullAllocatesNothing(t *testing.T) {
	ch, src, _, frame, v := knownSetup(t, 100, 0)
	ok := healthyListener(t, ch)
	for range 1000 {
		ch.route(src, frame, &v)
	}
	time.Sleep(10 * time.Millisecond)
	if n := testing.AllocsPerRun(10000, func() { ch.route(src, frame, &v) }); n != 0 {
		t.Fatalf("route allocates %.2f times per message", n)
	}
	if ok.dropped.Load() != 0 || ok.delivered() < 11000 {
		t.Fatalf("the healthy listener: %d delivered, %d dropped", ok.delivered(), ok.dropped.Load())
	}
}

// healthyListener adds a listener of "ev" to ch whose writer writes to a
// sink.
func healthyListener(t testing.TB, ch *channel) *conn {
	t.Helper()
	c := newConn(ch, sink{})
	c.id = "ok"
	if _, ok := ch.join(c); !ok {
		t.Fatal("join")
	}
	if err := ch.index.Add(c, "ev"); err != nil {
		t.Fatal(err)
	}
	ch.srv.conns.Add(1)
	go func() {
		defer ch.srv.conns.Done()
		c.writeLoop()
	}()
	return c
}

// BenchmarkRouteBesideFull is a sender's message of 128 bytes to a healthy
// listener beside 100 listeners whose outboxes are full (issue 10, item 5).
func BenchmarkRouteBesideFull(b *testing.B) {
	ch, src, _, _, _ := knownSetup(b, 100, 0)
	healthyListener(b, ch)
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 128)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	b.ReportAllocs()
	for b.Loop() {
		ch.route(src, frame, &v)
	}
}
