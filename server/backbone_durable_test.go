package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/natstest"
)

// numbers returns the data of in's messages as integers.
func numbers(t testing.TB, in *ntInbox) []int {
	t.Helper()
	var out []int
	for _, m := range in.get() {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Fatalf("message data %q is not a number", m.Data)
		}
		out = append(out, n)
	}
	return out
}

// checkExactlyInOrder fails unless got is 0..n-1.
func checkExactlyInOrder(t testing.TB, what string, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("%s: got %d messages, want %d", what, len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Errorf("%s: message %d is %d: lost, duplicated or out of order", what, i, v)
			return
		}
	}
}

// emitNumbered emits 0..n-1 on a with a pause every 10 messages, calling
// at(i) before message i.
func emitNumbered(t testing.TB, a *netcluster.Agent, event string, n int, at func(i int)) {
	t.Helper()
	ctx := ctlCtx(t)
	for i := range n {
		at(i)
		if err := a.EmitRaw(ctx, event, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// TestBackboneFailover kills, mid-stream, the NATS server the emitting
// host is connected to: the host reconnects to another; a durable channel
// delivers every message exactly once and in order; on a plain channel
// what is missing equals what the counters report.
func TestBackboneFailover(t *testing.T) {
	t.Parallel()
	nc := natstest.RunCluster(t, 3, natstest.Options{})
	chans := `{"channels": {"D": {"propagatetonet": true, "durable": {"replicas": 3}}, "P": {"propagatetonet": true}}}`
	h1 := ntStart(t, bbConfig(t, nc.URLs(), strings.Replace(chans, "{", `{"nodename": "fo1",`, 1)))
	h2 := ntStart(t, bbConfig(t, nc.URLs(), strings.Replace(chans, "{", `{"nodename": "fo2",`, 1)))
	bbConnected(t, h1, h2)
	_, dIn := ntListen(t, h2, "D", "n")
	_, pIn := ntListen(t, h2, "P", "n")
	bbSubjects(t, h2, "netcluster.default.P.n")
	ntWait(t, "durable consumer", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })
	url := h1.srv.Stats().Backbone.URL
	victim := -1
	for i, u := range nc.URLs() {
		if u == url {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("host 1 on %q, not one of %v", url, nc.URLs())
	}
	dOut := ctlAgent(t, h1.dir, "D")
	pOut := ctlAgent(t, h1.dir, "P")
	const n = 600
	emitNumbered(t, dOut, "n", n, func(i int) {
		if i == n/3 {
			nc.Kill(victim)
		}
	})
	emitNumbered(t, pOut, "n", n, func(i int) {})
	defer func() {
		if t.Failed() {
			for i, h := range []*ntNode{h1, h2} {
				b := h.srv.Stats().Backbone
				t.Logf("host %d: %s to NATS %q (NATS server %d killed), %d reconnects, last error %q",
					i+1, b.State, b.URL, victim+1, b.Reconnects, b.LastError)
			}
		}
	}()
	bbWait(t, "host 1 reconnected elsewhere", 30*time.Second, func() bool {
		b := h1.srv.Stats().Backbone
		return b.State == "connected" && b.URL != url
	})
	if r := h1.srv.Stats().Backbone.Reconnects; r == 0 {
		t.Error("no reconnect counted")
	}
	deadline := time.Now().Add(60 * time.Second) // a JetStream leader election takes seconds
	for len(dIn.get()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(dIn.get()) < n {
		t.Errorf("durable: %d of %d; sender %+v; receiver %+v", len(dIn.get()), n, h1.srv.Stats().Backbone, h2.srv.Stats().Backbone)
	}
	time.Sleep(300 * time.Millisecond)
	checkExactlyInOrder(t, "durable channel", numbers(t, dIn), n)

	// The plain channel: every message arrived, or is counted lost by the
	// receiver or dropped by the sender.
	bbWait(t, "the plain stream", 30*time.Second, func() bool {
		got := len(pIn.get())
		lost := h2.srv.Stats().Backbone.Lost
		dropped := h1.srv.Stats().Backbone.Dropped
		return uint64(got)+lost+dropped >= n
	})
	got := numbers(t, pIn)
	lost, dropped := h2.srv.Stats().Backbone.Lost, h1.srv.Stats().Backbone.Dropped
	if uint64(len(got))+lost+dropped != n {
		t.Errorf("plain channel: %d delivered + %d lost + %d dropped, want %d", len(got), lost, dropped, n)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("plain channel: %d after %d: duplicated or out of order", got[i], got[i-1])
		}
	}
}

// TestBackboneRestartDurable restarts an ncserver during a stream on a
// durable channel: after the restart its agents get what was sent while
// it was down.
func TestBackboneRestartDurable(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("r1")))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("r2")))
	bbConnected(t, h1, h2)
	a2, in := ntListen(t, h2, "D", ".*")
	ntWait(t, "durable consumer", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })
	out := ctlAgent(t, h1.dir, "D")
	const n = 300
	var h2b *ntNode
	cfg2 := bbConfig(t, []string{ns.URL()}, cfg("r2"))
	var in2 *ntInbox
	emitNumbered(t, out, "n", n, func(i int) {
		switch i {
		case 100:
			ntWait(t, "first part", func() bool { return len(in.get()) == 100 })
			a2.Close(context.Background())
			h2.srv.Close()
		case 200:
			h2b = ntStart(t, cfg2)
			_, in2 = ntListen(t, h2b, "D", ".*")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for len(in2.get()) < n-100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	got := append(numbers(t, in), numbers(t, in2)...)
	checkExactlyInOrder(t, "before and after the restart", got, n)
	if t.Failed() {
		t.Logf("before the restart %d, after it %d; missing %v; after the restart %v",
			len(in.get()), len(in2.get()), missing(got, n), numbers(t, in2))
		t.Logf("host 2 after the restart: %+v; its consumer: %s", h2b.srv.Stats().Backbone, consumerState(t, ns.URL(), cfg2, "D"))
		for _, c := range h2b.srv.Stats().Channels {
			t.Logf("host 2 after the restart, channel %s: %+v", c.Name, c)
		}
	}
}

// missing returns the numbers below n that are not in got.
func missing(got []int, n int) []int {
	seen := make(map[int]bool, len(got))
	for _, v := range got {
		seen[v] = true
	}
	var out []int
	for i := range n {
		if !seen[i] {
			out = append(out, i)
		}
	}
	return out
}

// consumerState describes s's durable consumer of channel as JetStream
// sees it.
func consumerState(t testing.TB, url string, bus *config.Config, channel string) string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	stream := backbone.StreamName(bus.NATS.Prefix, bus.NATS.Cluster, channel)
	c, err := js.Consumer(ctlCtx(t), stream, backbone.ConsumerName(bus.NodeName))
	if err != nil {
		return err.Error()
	}
	i := c.CachedInfo()
	return fmt.Sprintf("delivered %d (stream %d), ack floor %d, %d pending, %d ack pending, %d redelivered",
		i.Delivered.Consumer, i.Delivered.Stream, i.AckFloor.Stream, i.NumPending, i.NumAckPending, i.NumRedelivered)
}

// TestBackboneConnectErrors: bad credentials, no NATS server, a TLS
// mismatch: the error names the URL; local agents are served regardless.
func TestBackboneConnectErrors(t *testing.T) {
	t.Parallel()
	auth := natstest.Run(t, natstest.Options{NoJetStream: true, User: "u", Password: "right"})
	plain := natstest.Run(t, natstest.Options{NoJetStream: true})
	for _, tt := range []struct {
		name, url, extra, want string
	}{
		{"bad credentials", auth.URL(), `"user": "u", "password": "wrong"`, "authorization violation"},
		{"no server", "nats://127.0.0.1:1", "", "cannot connect to nats://127.0.0.1:1"},
		{"tls mismatch", plain.URL(), `"tls": {"servername": "localhost"}`, "secure connection not available"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nats := fmt.Sprintf(`{"urls": [%q]}`, tt.url)
			if tt.extra != "" {
				nats = fmt.Sprintf(`{"urls": [%q], %s}`, tt.url, tt.extra)
			}
			bus, err := config.Parse([]byte(`{"connecttonet": true, "nats": `+nats+`, "channels": {"A": {"propagatetonet": true}}}`), "t.json")
			if err != nil {
				t.Fatal(err)
			}
			h := ntStart(t, bus)
			ntWait(t, "the error", func() bool { return h.srv.Stats().Backbone.LastError != "" })
			b := h.srv.Stats().Backbone
			if !strings.Contains(b.LastError, tt.url) || !strings.Contains(strings.ToLower(b.LastError), tt.want) || b.State == "connected" {
				t.Errorf("backbone %+v; want an error naming %s and %q", b, tt.url, tt.want)
			}
			// Local service goes on.
			_, in := ntListen(t, h, "A", "ev")
			a := ctlAgent(t, h.dir, "A")
			if err := a.Emit(ctlCtx(t), "ev", 1); err != nil {
				t.Fatal(err)
			}
			ntWait(t, "local delivery", func() bool { return len(in.get()) == 1 })
		})
	}
}

// TestBackboneReload adds, changes and removes the backbone by reload: the
// local agents stay connected throughout, and messages cross once it runs.
func TestBackboneReload(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	chans := `{"channels": {"A": {"propagatetonet": true}}}`
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, chans))
	plain, err := config.Parse([]byte(chans), "plain.json")
	if err != nil {
		t.Fatal(err)
	}
	h2 := ntStart(t, plain)
	if h2.srv.Stats().Backbone != nil {
		t.Fatal("backbone without a nats block")
	}
	_, in := ntListen(t, h2, "A", "ev")
	before := h2.srv.Stats().Channels
	reload := func(bus *config.Config) {
		t.Helper()
		bus.SocketDir = h2.dir
		if err := h2.srv.Reload(bus); err != nil {
			t.Fatal(err)
		}
	}
	emitter := ctlAgent(t, h1.dir, "A")
	ctx := ctlCtx(t)

	// Added.
	reload(bbConfig(t, []string{ns.URL()}, chans))
	bbConnected(t, h2)
	bbSubjects(t, h2, "netcluster.default.A.ev")
	emitter.Emit(ctx, "ev", 1)
	ntWait(t, "a message over the new backbone", func() bool { return len(in.get()) == 1 })

	// Changed: another cluster name; host 1 keeps the old one, so nothing
	// crosses, and host 2 subscribes under the new name.
	changed := bbConfig(t, []string{ns.URL()}, chans)
	changed.NATS.Cluster = "other"
	reload(changed)
	bbSubjects(t, h2, "netcluster.other.A.ev")
	emitter.Emit(ctx, "ev", 2)
	time.Sleep(200 * time.Millisecond)
	if len(in.get()) != 1 {
		t.Errorf("got %d messages across clusters, want 1", len(in.get()))
	}

	// Removed.
	again, _ := config.Parse([]byte(chans), "plain.json")
	reload(again)
	if h2.srv.Stats().Backbone != nil {
		t.Error("backbone still running after its removal")
	}
	// The listening agent was never dropped.
	after := h2.srv.Stats().Channels
	for i := range before {
		if before[i].Name == "A" && (len(after[i].Agents) != 1 || after[i].Agents[0].ID != before[i].Agents[0].ID) {
			t.Errorf("channel A's agents changed across reloads: %+v → %+v", before[i].Agents, after[i].Agents)
		}
	}
}
