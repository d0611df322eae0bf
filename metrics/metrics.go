// Package metrics serves a netcluster server's counters to Prometheus.
//
// [Handler] is what server.Config.Metrics takes: the endpoint the config
// key "metrics" opens then answers GET /metrics from a registry of its
// own, read from Server.Stats at scrape time, so the metrics cost nothing
// per message. ncserver sets it; an embedder that wants the endpoint sets
// it too:
//
//	srv, err := server.New(server.Config{Bus: bus, Metrics: metrics.Handler})
//
// The server package itself does not link Prometheus.
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netcluster/netcluster/server"
)

// Handler returns the handler of s's metrics: GET /metrics, with the
// server's counters, the Go runtime's and the process's. Errors of a
// scrape go to logger if one is given with [HandlerWithLogger].
func Handler(s *server.Server) http.Handler { return handler(s, nil) }

// HandlerWithLogger returns a function for server.Config.Metrics that
// logs scrape errors to log.
func HandlerWithLogger(log *slog.Logger) func(*server.Server) http.Handler {
	return func(s *server.Server) http.Handler { return handler(s, log) }
}

func handler(s *server.Server, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var opts promhttp.HandlerOpts
	if log != nil {
		opts.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, opts))
	return mux
}
