package metrics_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv, dir := startServer(t, testserver.ParseConfig(t, `{
		"outbuffer": 65536,
		"channels": {"A": {"propagatetochannels": "B"}, "B": {}, "S": {}, "R": {}},
	}`))
	addr := serve(t, srv)

	a := agent(t, dir, "A")
	b := agent(t, dir, "B")
	got := make(chan struct{}, 100)
	if _, err := b.On("tick", func(*netcluster.Message) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	b.Flush(testCtx(t))
	const n = 10
	for range n {
		if err := a.EmitRaw(testCtx(t), "tick", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("message lost")
		}
	}

	// A consumer on S that never reads: the server drops for it.
	stuck(t, dir, "S")
	s := agent(t, dir, "S")
	big := make([]byte, 32<<10)
	for range 200 {
		if err := s.EmitRaw(testCtx(t), "big", big); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush(testCtx(t))

	// On R: a request answered by a queue group member, one answered by
	// no one.
	w := agent(t, dir, "R")
	if _, err := w.OnQueue("ask", "g", func(m *netcluster.Message) { m.ReplyRaw(testCtx(t), []byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	w.Flush(testCtx(t))
	r := agent(t, dir, "R")
	if _, err := r.RequestRaw(testCtx(t), "ask", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RequestRaw(testCtx(t), "nobody", nil); err == nil {
		t.Fatal("a request to no one answered")
	}

	mf := scrape(t, addr)
	for _, c := range []struct {
		name, channel string
		want          float64
	}{
		{"netcluster_messages_received_total", "A", n},
		{"netcluster_received_bytes_total", "A", 10 * n},
		{"netcluster_messages_delivered_total", "B", n},
		{"netcluster_messages_delivered_total", "A", 0},
		{"netcluster_agents", "A", 1},
		{"netcluster_agents", "B", 1},
		{"netcluster_agents", "S", 2},
		{"netcluster_agents", "control", 0},
		{"netcluster_messages_received_total", "S", 200},
		{"netcluster_slow_consumers_disconnected_total", "S", 0},
		{"netcluster_requests_total", "R", 2},
		{"netcluster_no_responders_total", "R", 1},
		{"netcluster_replies_total", "R", 1},
		{"netcluster_queue_messages_total", "R", 1},
		{"netcluster_replies_dropped_total", "R", 0},
		{"netcluster_queue_redispatched_total", "R", 0},
		{"netcluster_queue_lost_total", "R", 0},
		{"netcluster_stream_ends_total", "R", 0},
		{"netcluster_stream_ends_dropped_total", "R", 0},
		{"netcluster_watches_early_total", "R", 0},
		{"netcluster_requests_total", "A", 0},
	} {
		if v := value(t, mf, c.name, c.channel); v != c.want {
			t.Errorf("%s{channel=%q} = %v; want %v", c.name, c.channel, v, c.want)
		}
	}
	if v := value(t, mf, "netcluster_delivered_bytes_total", "B"); v <= 10*n {
		t.Errorf("delivered bytes to B = %v; want more than the data", v)
	}
	if v := value(t, mf, "netcluster_messages_dropped_total", "S"); v == 0 {
		t.Error("no drops counted for the consumer that never reads")
	}
	info := mf["netcluster_server_info"]
	if info == nil || info.GetMetric()[0].GetLabel()[0].GetValue() != srv.NodeID() {
		t.Errorf("server info %v", info)
	}
	start := mf["netcluster_server_start_time_seconds"]
	if mf["go_goroutines"] == nil || start == nil {
		t.Fatal("go or start time metrics missing")
	}
	if v, want := start.GetMetric()[0].GetGauge().GetValue(), float64(srv.Stats().Started.UnixNano())/1e9; v != want {
		t.Errorf("start time %v; want %v", v, want)
	}
	if mf["netcluster_net_messages_sent_total"] != nil {
		t.Error("network metrics without the network")
	}
}

// The "metrics" key starts the endpoint with the server, with /healthz
// and /metrics; a reload turns it off, and Close stops it.
func TestMetricsFromConfig(t *testing.T) {
	addr := freeAddr(t)
	srv, _ := startServer(t, testserver.ParseConfig(t, `{"metrics": "`+addr+`", "channels": {"A": {}}}`))
	if a := srv.MetricsAddr(); a == nil || a.String() != addr {
		t.Fatalf("MetricsAddr %v, want %s", a, addr)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if mf := scrape(t, addr); mf["netcluster_agents"] == nil {
		t.Fatal("no netcluster_agents metric")
	}
	bus := srv.Bus()
	bus.Metrics = ""
	if err := srv.Reload(bus); err != nil {
		t.Fatal(err)
	}
	if a := srv.MetricsAddr(); a != nil {
		t.Fatalf("metrics still on at %v after reload with none", a)
	}
	// On again, elsewhere: the old listener may still be stopping.
	addr = freeAddr(t)
	bus.Metrics = addr
	if err := srv.Reload(bus); err != nil {
		t.Fatal(err)
	}
	if mf := scrape(t, addr); mf["netcluster_agents"] == nil {
		t.Fatal("no netcluster_agents metric after the reload turned it on")
	}
	srv.Close()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("metrics endpoint still answers after Close")
	}
}

// TestMetricsNetwork: with the network on, the metrics carry the network
// figures, per peer included. Two servers on lo, a random group.
func TestMetricsNetwork(t *testing.T) {
	t.Parallel()
	group, port := fmt.Sprintf("239.255.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250)), 20000+rand.IntN(30000)
	netConfig := func() *config.Config {
		return testserver.ParseConfig(t, fmt.Sprintf(`{"connecttonet": true, "interface": "lo", "ttl": 0, "addr": %q, "port": %d,
			"channels": {"A": {"propagatetonet": true}}}`, group, port))
	}
	n1, dir1 := startServer(t, netConfig())
	n2, dir2 := startServer(t, netConfig())
	testutil.Eventually(t, "peers", func() bool {
		s1, s2 := n1.Stats().Network, n2.Stats().Network
		return s1 != nil && s2 != nil && len(s1.Peers) == 1 && len(s2.Peers) == 1
	})
	in := make(chan struct{}, 1)
	b := agent(t, dir2, "A")
	if _, err := b.On(".*", func(*netcluster.Message) { in <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := agent(t, dir1, "A").Emit(testCtx(t), "over", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in:
	case <-time.After(10 * time.Second):
		t.Fatal("the message did not cross the network")
	}

	mf := scrape(t, serve(t, n2))
	if f := mf["netcluster_net_messages_received_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("received counter %v", f)
	}
	f := mf["netcluster_net_peer_messages_delivered_total"]
	found := false
	for _, met := range f.GetMetric() {
		for _, l := range met.GetLabel() {
			if l.GetName() == "peer" && l.GetValue() == n1.NodeID() {
				found = met.GetCounter().GetValue() == 1
			}
		}
	}
	if !found {
		t.Errorf("peer delivered counter %v", f)
	}
	if mf["netcluster_net_peer_last_seen_seconds"] == nil {
		t.Error("no last seen gauge")
	}
	st := n2.Stats().Network
	if v := single(t, mf, "netcluster_net_memory_limit_bytes"); v == 0 || v != float64(st.MemoryLimit) {
		t.Errorf("memory limit %v, stats say %d", v, st.MemoryLimit)
	}
	if v := single(t, mf, "netcluster_net_memory_bytes"); v == 0 {
		t.Error("memory held for the peer is 0")
	}
}
