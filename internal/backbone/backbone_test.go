package backbone

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// sink collects what a Backbone delivers.
type sink struct {
	mu     sync.Mutex
	frames []wire.Msg
	nodes  []NodeID
	signal chan struct{}
}

func newSink() *sink { return &sink{signal: make(chan struct{}, 1)} }

func (s *sink) deliver(node NodeID, frames []byte, _ Stream) (heard int) {
	heard = len(frames) // a sink takes everything
	for len(frames) > 0 {
		f, rest, ok := wire.Split(frames)
		if !ok {
			panic("a frame cut short")
		}
		frames = rest
		v, err := wire.ParseMsg(f.Payload)
		if err != nil {
			panic(err)
		}
		m := v.Msg()
		m.Data = bytes.Clone(v.Data)
		s.mu.Lock()
		s.frames = append(s.frames, m)
		s.nodes = append(s.nodes, node)
		s.mu.Unlock()
	}
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return heard
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

func (s *sink) msgs() []wire.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Msg(nil), s.frames...)
}

// waitLen waits until s holds n messages.
func (s *sink) waitLen(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for s.len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d", s.len(), n) // stats in the caller
		}
		select {
		case <-s.signal:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func natsCfg(urls ...string) *config.NATS {
	n := config.NewNATS()
	n.URLs = urls
	return n
}

// open starts a Backbone for a test, closed at its end.
func open(t testing.TB, n *config.NATS, id byte, durable map[string]config.Durable) (*Backbone, *sink) {
	t.Helper()
	s := newSink()
	b, err := New(Config{NATS: n, NodeID: NodeID{id}, NodeName: fmt.Sprintf("node%d", id), Durable: durable}, s.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, s
}

func frame(channel, agent, event string, data []byte) []byte {
	return wire.AppendMsg(nil, &wire.Msg{Channel: channel, Agent: agent, Event: event, Data: data})
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitConnected(t testing.TB, b *Backbone) {
	t.Helper()
	waitFor(t, "connection", 10*time.Second, func() bool { return b.Stats().State == "connected" })
}

// subjectsOnServer returns the subscriptions the NATS server holds whose
// subject starts with prefix.
func subjectsOnServer(t *testing.T, s *natstest.Server, prefix string) []string {
	t.Helper()
	sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sub := range sz.Subs {
		if strings.HasPrefix(sub.Subject, prefix) {
			out = append(out, sub.Subject)
		}
	}
	return out
}

func TestSendReceive(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, sa := open(t, natsCfg(ns.URL()), 1, nil)
	b, sb := open(t, natsCfg(ns.URL()), 2, nil)
	waitConnected(t, a)
	waitConnected(t, b)

	b.SetInterest("A", []string{"log", `orders\..*`}, false)
	waitFor(t, "subscriptions", 5*time.Second, func() bool {
		return len(subjectsOnServer(t, ns, "netcluster.default.A.")) == 2
	})
	// Nothing of channel B or of other events goes to b.
	for i := range 10 {
		data := []byte(fmt.Sprint(i))
		for _, ev := range []string{"log", "orders.new", "other"} {
			if err := a.Send("A", ev, frame("A", "ag1", ev, data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Send("B", "log", frame("B", "ag1", "log", data)); err != nil {
			t.Fatal(err)
		}
	}
	sb.waitLen(t, 20, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	got := sb.msgs()
	if len(got) != 20 {
		t.Fatalf("b got %d messages, want 20", len(got))
	}
	for i, m := range got {
		ev := []string{"log", "orders.new"}[i%2]
		// The publisher writes its node id into the frame's Node field.
		if m.Channel != "A" || m.Agent != "ag1" || m.Event != ev || string(m.Data) != fmt.Sprint(i/2) || m.Node != "0100000000000000" {
			t.Errorf("message %d = %+v, want A/ag1/%s/%d from node 0100000000000000, in order", i, m, ev, i/2)
		}
	}
	if sb.nodes[0] != (NodeID{1}) {
		t.Errorf("origin node %x, want 01…", sb.nodes[0])
	}
	if sa.len() != 0 {
		t.Errorf("a received %d of its own messages", sa.len())
	}
	// NATS itself carried 40 messages in, and only the 20 b wanted out.
	vz, _ := ns.Varz(nil)
	if vz.InMsgs != 40 || vz.OutMsgs != 20 {
		t.Errorf("nats server: in %d, out %d messages; want 40 and 20", vz.InMsgs, vz.OutMsgs)
	}
	st := a.Stats()
	if st.MsgsOut != 40 || st.Dropped != 0 || st.State != "connected" || st.URL != ns.URL() {
		t.Errorf("a stats %+v", st)
	}
	if st := b.Stats(); st.MsgsIn != 20 || st.Lost != 0 || st.Duplicates != 0 {
		t.Errorf("b stats %+v", st)
	}

	// Interest removed: the server drops the subscriptions.
	b.SetInterest("A", nil, false)
	waitFor(t, "unsubscribe", 5*time.Second, func() bool {
		return len(subjectsOnServer(t, ns, "netcluster.default.A.")) == 0
	})
}

// TestInterestChange checks that widening and narrowing the interest
// neither loses nor duplicates messages of a steady stream.
func TestInterestChange(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	b, sb := open(t, natsCfg(ns.URL()), 2, nil)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("A", []string{"e"}, false)
	waitFor(t, "subscription", 5*time.Second, func() bool { return len(b.Subjects()) == 1 })
	b.nc.Flush()
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			a.Send("A", "e", frame("A", "x", "e", []byte(fmt.Sprint(i))))
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			if i%2 == 0 {
				b.SetInterest("A", []string{"e", ".*"}, false)
			} else {
				b.SetInterest("A", []string{"e"}, false)
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		break
	}
	deadline := time.Now().Add(10 * time.Second)
	for sb.len() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if sb.len() < n {
		for i, m := range sb.msgs() {
			if string(m.Data) != fmt.Sprint(i) {
				t.Errorf("first missing: %d (have %q)", i, m.Data)
				break
			}
		}
		vz, _ := ns.Varz(nil)
		t.Fatalf("got %d of %d; sender %+v; receiver %+v; nats in %d out %d slow %d", sb.len(), n, a.Stats(), b.Stats(), vz.InMsgs, vz.OutMsgs, vz.SlowConsumers)
	}
	time.Sleep(50 * time.Millisecond)
	for i, m := range sb.msgs() {
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: lost, reordered or duplicated (stats %+v)", i, m.Data, b.Stats())
		}
	}
	if sb.len() != n {
		t.Errorf("got %d, want %d", sb.len(), n)
	}
}

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true, MaxPayload: 1 << 20})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	b, sb := open(t, natsCfg(ns.URL()), 2, nil)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("A", []string{".*"}, false)
	waitFor(t, "subscription", 5*time.Second, func() bool { return len(b.Subjects()) == 1 })
	b.nc.Flush()
	// The largest frame Send takes (16 MiB, the default MaxMessage),
	// which grows by the node id written in on the way.
	big := make([]byte, 16<<20-wire.MsgOverhead-len("A")-len("x")-len("big"))
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := a.Send("A", "big", frame("A", "x", "big", big)); err != nil {
		t.Fatal(err)
	}
	a.Send("A", "small", frame("A", "x", "small", []byte("after")))
	sb.waitLen(t, 2, 20*time.Second)
	got := sb.msgs()
	if !bytes.Equal(got[0].Data, big) || string(got[1].Data) != "after" {
		t.Errorf("large message did not arrive intact and in order (%d bytes, then %q)", len(got[0].Data), got[1].Data)
	}
	if err := a.Send("A", "huge", make([]byte, 16<<20+1)); err != ErrTooLarge {
		t.Errorf("Send 16 MiB + 1 = %v, want ErrTooLarge", err)
	}
}

func TestOutageBuffersThenDrops(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	n := natsCfg(ns.URL())
	n.OutBuffer = 64 << 10
	a, _ := open(t, n, 1, nil)
	waitConnected(t, a)
	ns.Shutdown()
	ns.WaitForShutdown()
	waitFor(t, "disconnect", 10*time.Second, func() bool { return a.Stats().State != "connected" })
	data := make([]byte, 1000)
	var refused int
	for range 200 {
		if err := a.Send("A", "e", frame("A", "x", "e", data)); err != nil {
			refused++
		}
	}
	// The publisher's queue passes them to nats.go, which holds 64 KiB
	// and refuses the rest: dropped and counted.
	var st Stats
	waitFor(t, "the queue to drain into nats.go", 5*time.Second, func() bool {
		st = a.Stats()
		return a.st.bufferedOut.Load() == 0
	})
	if refused != 0 || st.Dropped == 0 || st.Dropped == 200 {
		// (Once seen beside a heavy -race run, not reproduced since in
		// 130 runs alone and 8 of the package beside load: the whole
		// figures and nats.go's own state, to tell why next time.)
		held, _ := a.nc.Buffered()
		t.Errorf("dropped %d of 200 (%d refused by Send), want some held in 64 KiB and the rest counted; nats.go %v, %d bytes buffered; stats %+v",
			st.Dropped, refused, a.nc.Status(), held, st)
	}
	// nats.go lets the last publication take it over its bound: at most
	// one batch.
	if st.Buffered == 0 || st.Buffered > 64<<10+a.batchLimit()+2<<10 {
		t.Errorf("buffered %d bytes, want up to 64 KiB and one batch", st.Buffered)
	}
	if !strings.Contains(st.LastError, ns.URL()) && !strings.Contains(st.LastError, "127.0.0.1") {
		t.Errorf("LastError %q does not name the server", st.LastError)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	auth := natstest.Run(t, natstest.Options{NoJetStream: true, User: "u", Password: "right"})
	bad := natsCfg(auth.URL())
	bad.User, bad.Password = "u", "wrong"
	nothing := natsCfg("nats://127.0.0.1:1")
	for _, tt := range []struct {
		name string
		n    *config.NATS
		want string
	}{
		{"bad credentials", bad, "authorization violation"},
		{"no server", nothing, "cannot connect to"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := open(t, tt.n, 1, nil)
			waitFor(t, "error", 10*time.Second, func() bool { return b.Stats().LastError != "" })
			st := b.Stats()
			if !strings.Contains(st.LastError, tt.n.URLs[0]) || !strings.Contains(strings.ToLower(st.LastError), tt.want) || st.State == "connected" {
				t.Errorf("stats %+v, want an error naming %s and %q", st, tt.n.URLs[0], tt.want)
			}
			if st.State != "reconnecting" || st.URL != "" {
				t.Errorf("state %q, URL %q while retrying; want reconnecting, none", st.State, st.URL)
			}
			// Sends are buffered, not refused, while it retries.
			if err := b.Send("A", "e", frame("A", "x", "e", nil)); err != nil {
				t.Errorf("Send while retrying = %v", err)
			}
			b.Close()
			if st := b.Stats(); st.State != "closed" {
				t.Errorf("state %q after Close, want closed", st.State)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	n := natsCfg("nats://h")
	n.Creds = "/nonexistent.creds"
	if _, err := Check(Config{NATS: n}); err == nil || !strings.Contains(err.Error(), "nats.creds") {
		t.Errorf("Check = %v, want the creds file named", err)
	}
	n = natsCfg("nats://h")
	n.TLS.CA = "/nonexistent-ca.pem"
	if _, err := Check(Config{NATS: n}); err == nil || !strings.Contains(err.Error(), "nats.tls.ca") {
		t.Errorf("Check = %v, want the CA named", err)
	}
}
