package metrics_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
	"github.com/netcluster/netcluster/metrics"
	"github.com/netcluster/netcluster/server"
)

func testCtx(t testing.TB) context.Context { return testutil.Context(t, 20*time.Second) }

// startServer starts a server on the config src with metrics.Handler in
// a new socket directory, and closes it at the end of the test.
func startServer(t testing.TB, bus *config.Config) (*server.Server, string) {
	t.Helper()
	bus.SocketDir = testutil.ShortDir(t)
	srv, err := server.New(server.Config{Bus: bus, Console: io.Discard, Metrics: metrics.Handler})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, bus.SocketDir
}

// serve serves metrics.Handler(srv) on a test HTTP server and returns its
// address.
func serve(t testing.TB, srv *server.Server) string {
	hs := httptest.NewServer(metrics.Handler(srv))
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String()
}

// agent connects an agent and closes it at the end of the test.
func agent(t testing.TB, dir, channel string) *netcluster.Agent {
	t.Helper()
	a, err := netcluster.Connect(testCtx(t), channel, netcluster.WithSocketDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// stuck connects a consumer that listens to everything on channel and
// never reads, once the server has its listener.
func stuck(t testing.TB, dir, channel string) {
	t.Helper()
	nc, err := transport.Dial(testCtx(t), transport.SocketPath(dir, channel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hello := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "stuck", Channel: channel})...)
	hello = wire.AppendListen(hello, wire.TypeListen, ".*")
	hello = wire.AppendU64(hello, wire.TypePing, 1)
	if _, err := nc.Write(hello); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)
	for _, want := range []byte{wire.TypeWelcome, wire.TypePong} {
		if f, err := rd.Next(); err != nil || f.Type != want {
			t.Fatalf("stuck consumer got %v, %v; want %s", f.Type, err, wire.TypeName(want))
		}
	}
}

// scrape fetches and parses the metrics, and checks the page's shape
// (CheckExposition) that the parser does not.
func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	text := scrapeText(t, addr)
	if err := metrics.CheckExposition(text); err != nil {
		t.Fatalf("exposition: %v\n%s", err, text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

// scrapeText fetches the metrics page.
func scrapeText(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// value returns the value of the metric name with label channel.
func value(t testing.TB, mf map[string]*dto.MetricFamily, name, channel string) float64 {
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

// single returns the value of the unlabelled metric name.
func single(t testing.TB, mf map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := mf[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("metric %s: %v, want one unlabelled value", name, f)
	}
	if c := f.GetMetric()[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// freeAddr returns a TCP address on 127.0.0.1 free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
