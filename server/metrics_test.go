package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
)

// ctlMetrics is the metrics handler of the tests of this package (package
// metrics, which has the real one, imports this one): it serves the
// server's node id at /metrics.
func ctlMetrics(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "node %s\n", s.NodeID())
	})
	return mux
}

// ctlScrape fetches /metrics and checks it is the handler's.
func ctlScrape(t testing.TB, s *Server, addr net.Addr) {
	t.Helper()
	code, body := ctlGet(t, "http://"+addr.String()+"/metrics")
	if code != http.StatusOK || body != "node "+s.NodeID()+"\n" {
		t.Fatalf("GET /metrics: %d %q; want the handler's", code, body)
	}
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
	ctlScrape(t, srv, m.listenAddr())
	m.stop()
	if m.listenAddr() != nil {
		t.Error("listening after stop")
	}
}

// TestMetricsHealthz: /healthz is the server's own, whatever the handler.
func TestMetricsHealthz(t *testing.T) {
	t.Parallel()
	srv, _ := ctlServer(t, `{"channels": {"A": {}}}`)
	var m metricsEndpoint
	if err := m.start(srv, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.stop()
	addr := m.listenAddr().String()
	ctlScrape(t, srv, m.listenAddr())
	if code, body := ctlGet(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	srv.Close()
	if code, body := ctlGet(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable || body != "closed\n" {
		t.Errorf("healthz after close %d %q", code, body)
	}
}

// TestMetricsWithoutHandler: a config with "metrics" on a server whose
// Config has no Metrics fails Start and Reload, naming the key; without
// the key the server runs.
func TestMetricsWithoutHandler(t *testing.T) {
	t.Parallel()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	want := `netcluster: metrics: the config key "metrics" is "` + addr + `", but server.Config.Metrics is nil`
	bus, err := config.Parse([]byte(`{"metrics": "`+addr+`", "channels": {"A": {}}}`), t.Name()+".jsonc")
	if err != nil {
		t.Fatal(err)
	}
	bus.SocketDir = testutil.ShortDir(t)
	s, err := New(Config{Bus: bus, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Start: %v; want %s", err, want)
	}

	bus.Metrics = ""
	s2, err := New(Config{Bus: bus, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	bus.Metrics = addr
	if err := s2.Reload(bus); err == nil || !strings.HasPrefix(err.Error(), "netcluster: reload: "+want) {
		t.Fatalf("Reload: %v; want %s", err, want)
	}
	if s2.MetricsAddr() != nil || s2.Bus().Metrics != "" {
		t.Error("the failed reload changed the metrics")
	}
}
