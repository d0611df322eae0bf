package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/wire"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ctlScrape fetches and parses the metrics.
func ctlScrape(t testing.TB, addr net.Addr) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

// ctlValue returns the value of the metric name with label channel.
func ctlValue(t testing.TB, mf map[string]*dto.MetricFamily, name, channel string) float64 {
	t.Helper()
	f := mf[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "channel" && l.GetValue() == channel {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{channel=%q}", name, channel)
	return 0
}

func ctlGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{
		"outbuffer": 65536,
		"channels": {"A": {"propagatetochannels": "B"}, "B": {}, "S": {}},
	}`)
	var m metricsEndpoint
	if err := m.start(srv, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.stop()
	addr := m.listenAddr()

	a := ctlAgent(t, dir, "A")
	b := ctlAgent(t, dir, "B")
	got := make(chan struct{}, 100)
	if _, err := b.On("tick", func(*netcluster.Message) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	b.Flush(ctlCtx(t))
	const n = 10
	for range n {
		if err := a.EmitRaw(ctlCtx(t), "tick", []byte("0123456789")); err != nil {
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
	stuck := ctlDialRaw(t, dir, "S", "stuck")
	stuck.write(wire.AppendListen(nil, wire.TypeListen, ".*"))
	stuck.sync(1)
	s := ctlAgent(t, dir, "S")
	big := make([]byte, 32<<10)
	for range 200 {
		if err := s.EmitRaw(ctlCtx(t), "big", big); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush(ctlCtx(t))

	mf := ctlScrape(t, addr)
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
	} {
		if v := ctlValue(t, mf, c.name, c.channel); v != c.want {
			t.Errorf("%s{channel=%q} = %v; want %v", c.name, c.channel, v, c.want)
		}
	}
	if v := ctlValue(t, mf, "netcluster_delivered_bytes_total", "B"); v <= 10*n {
		t.Errorf("delivered bytes to B = %v; want more than the data", v)
	}
	if v := ctlValue(t, mf, "netcluster_messages_dropped_total", "S"); v == 0 {
		t.Error("no drops counted for the consumer that never reads")
	}
	info := mf["netcluster_server_info"]
	if info == nil || info.GetMetric()[0].GetLabel()[0].GetValue() != srv.NodeID() {
		t.Errorf("server info %v", info)
	}
	if mf["go_goroutines"] == nil || mf["netcluster_server_start_time_seconds"] == nil {
		t.Error("go or start time metrics missing")
	}

	if code, body := ctlGet(t, "http://"+addr.String()+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	srv.Close()
	if code, body := ctlGet(t, "http://"+addr.String()+"/healthz"); code != http.StatusServiceUnavailable || body != "closed\n" {
		t.Errorf("healthz after close %d %q", code, body)
	}
}

func TestMetricsReloadAddress(t *testing.T) {
	t.Parallel()
	srv, _ := ctlServer(t, `{"channels": {"A": {}}}`)
	var m metricsEndpoint
	defer m.stop()
	if err := m.start(srv, ""); err != nil || m.listenAddr() != nil {
		t.Fatalf("off: %v %v", err, m.listenAddr())
	}
	if err := m.start(srv, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	first := m.listenAddr()
	if commit, _, err := m.prepare(srv, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	} else if commit(); m.listenAddr() != first {
		t.Error("the same address reopened the listener")
	}

	// An address in use fails, and the endpoint keeps serving.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, _, err := m.prepare(srv, busy.Addr().String()); err == nil || !strings.Contains(err.Error(), "netcluster: metrics:") {
		t.Errorf("prepare on a busy address: %v", err)
	}
	if code, _ := ctlGet(t, "http://"+first.String()+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz after a failed prepare: %d", code)
	}

	// A new address: the new listener serves, the old one is closed.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	// abort closes the listener prepare opened.
	_, abort, err := m.prepare(srv, freeAddr)
	if err != nil {
		t.Fatal(err)
	}
	abort()
	commit, _, err := m.prepare(srv, freeAddr)
	if err != nil {
		t.Fatalf("after abort: %v", err)
	}
	commit()
	if got := m.listenAddr().String(); got != freeAddr {
		t.Errorf("listening on %s; want %s", got, freeAddr)
	}
	// The old listener stops in the background.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", first.String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the old address still accepts")
		}
	}
	ctlScrape(t, m.listenAddr())
	m.stop()
	if m.listenAddr() != nil {
		t.Error("listening after stop")
	}
}
