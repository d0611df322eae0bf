package metrics_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/metrics"
)

// GET and HEAD /metrics answer, other methods 405 with Allow, other paths
// 404, as promhttp behind "GET /metrics" did.
func TestMetricsMethods(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}}}`))
	addr := "http://" + serve(t, srv)
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/metrics", 200, ""},
		{"HEAD", "/metrics", 200, ""},
		{"POST", "/metrics", 405, "GET, HEAD"},
		{"DELETE", "/metrics", 405, "GET, HEAD"},
		{"GET", "/other", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, addr+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %s, Allow %q; want %d, Allow %q", c.method, c.path, resp.Status, resp.Header.Get("Allow"), c.code, c.allow)
		}
		if c.method == "HEAD" && len(body) != 0 {
			t.Errorf("HEAD answered a body of %d bytes", len(body))
		}
	}
}

// A scraper that asks for gzip gets it (Prometheus does), and the page
// parses; one that refuses it with q=0 gets the text.
func TestMetricsGzip(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}}}`))
	addr := "http://" + serve(t, srv) + "/metrics"
	for _, c := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true}, {"deflate, GZIP;q=0.5", true}, {"gzip;q=0", false}, {"identity", false}, {"", false},
		// * offers gzip too, unless gzip is refused by name; the weight
		// may follow another parameter.
		{"*", true}, {"identity;q=1, *;q=0.1", true}, {"*;q=0", false}, {"*, gzip;q=0", false},
		{"gzip;level=1;q=0", false}, {"x-gzip", true},
	} {
		req, _ := http.NewRequest("GET", addr, nil)
		// Set by hand, the transport leaves the body compressed.
		req.Header.Set("Accept-Encoding", c.accept)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != c.gzip {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", c.accept, resp.Header.Get("Content-Encoding"))
			continue
		}
		text := raw
		if c.gzip {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if text, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if err := metrics.CheckExposition(string(text)); err != nil {
			t.Errorf("Accept-Encoding %q: %v", c.accept, err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if mf, err := p.TextToMetricFamilies(bytes.NewReader(text)); err != nil || mf["netcluster_agents"] == nil {
			t.Errorf("Accept-Encoding %q: %v, %d families", c.accept, err, len(mf))
		}
	}
}

// failingWriter is a ResponseWriter whose connection is gone.
type failingWriter struct{ h http.Header }

func (w failingWriter) Header() http.Header       { return w.h }
func (w failingWriter) WriteHeader(int)           {}
func (w failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

// A scrape that cannot be sent is logged to the logger given.
func TestMetricsWriteErrorLogged(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}}}`))
	var logged bytes.Buffer
	h := metrics.HandlerWithLogger(slog.New(slog.NewTextHandler(&logged, nil)))(srv)
	for _, enc := range []string{"", "gzip"} {
		logged.Reset()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		h.ServeHTTP(failingWriter{http.Header{}}, req)
		if s := logged.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "connection reset") {
			t.Errorf("Accept-Encoding %q: logged %q; want the write error", enc, s)
		}
	}
	// Without a logger the error goes nowhere, and nothing panics.
	metrics.Handler(srv).ServeHTTP(failingWriter{http.Header{}}, httptest.NewRequest("GET", "/metrics", nil))
}
