package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsStopTimeout bounds how long stopping the endpoint waits for
// scrapes in progress.
const metricsStopTimeout = 2 * time.Second

// metricsEndpoint is the optional HTTP listener of the config key
// "metrics": Prometheus metrics at /metrics and a health check at
// /healthz. Its zero value is an endpoint that is off. Its metrics live in
// a registry of its own, and are read from the server's counters at scrape
// time, so they cost nothing per message.
//
// start, prepare and stop are not safe to call concurrently with each
// other: the server calls them under its lock or once closed.
type metricsEndpoint struct {
	mu   sync.Mutex
	addr string // the configured address; "" when off
	hs   *http.Server
	ln   net.Listener
	done chan struct{} // closed when hs.Serve returns
}

// start listens on addr ("" means off) and serves s's metrics.
func (m *metricsEndpoint) start(s *Server, addr string) error {
	commit, err := m.prepare(s, addr)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// prepare opens a listener for addr if it differs from the address in
// use, and returns commit, which serves on the new listener and stops the
// old one. If prepare fails nothing changed; commit cannot fail. A reload
// calls prepare while checking everything that can fail, and commit once
// nothing can.
func (m *metricsEndpoint) prepare(s *Server, addr string) (commit func(), err error) {
	m.mu.Lock()
	same := addr == m.addr
	m.mu.Unlock()
	if same {
		return func() {}, nil
	}
	var ln net.Listener
	if addr != "" {
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("netcluster: metrics: %w", err)
		}
	}
	return func() {
		m.stop()
		if ln == nil {
			return
		}
		hs := &http.Server{
			Handler:           metricsHandler(s),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		done := make(chan struct{})
		m.mu.Lock()
		m.addr, m.hs, m.ln, m.done = addr, hs, ln, done
		m.mu.Unlock()
		s.log.Info("metrics listening", "addr", ln.Addr().String())
		go func() {
			defer close(done)
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("metrics endpoint stopped", "err", err)
			}
		}()
	}, nil
}

// stop closes the listener, waits briefly for scrapes in progress, and
// waits for the serving goroutine. It is a no-op when the endpoint is off.
func (m *metricsEndpoint) stop() {
	m.mu.Lock()
	hs, done := m.hs, m.done
	m.addr, m.hs, m.ln, m.done = "", nil, nil, nil
	m.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsStopTimeout)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
	<-done
}

// listenAddr returns the address the endpoint listens on, nil when off.
func (m *metricsEndpoint) listenAddr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// metricsHandler serves /metrics from a registry of its own and /healthz.
func metricsHandler(s *Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.running() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "closed")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// statsCollector reads the server's counters at scrape time.
type statsCollector struct {
	s *Server

	info, start, agents                      *prometheus.Desc
	msgsIn, bytesIn, msgsOut, bytesOut, drop *prometheus.Desc
	slow                                     *prometheus.Desc
}

var _ prometheus.Collector = (*statsCollector)(nil)

func newStatsCollector(s *Server) *statsCollector {
	ch := []string{"channel"}
	return &statsCollector{
		s:        s,
		info:     prometheus.NewDesc("netcluster_server_info", "The server's node id, as a label; always 1.", []string{"node_id"}, nil),
		start:    prometheus.NewDesc("netcluster_server_start_time_seconds", "When the server started, in seconds since the Unix epoch.", nil, nil),
		agents:   prometheus.NewDesc("netcluster_agents", "Agents connected to the channel.", ch, nil),
		msgsIn:   prometheus.NewDesc("netcluster_messages_received_total", "Messages emitted by the channel's agents.", ch, nil),
		bytesIn:  prometheus.NewDesc("netcluster_received_bytes_total", "Data bytes of the messages emitted by the channel's agents.", ch, nil),
		msgsOut:  prometheus.NewDesc("netcluster_messages_delivered_total", "Messages queued for delivery to the channel's agents.", ch, nil),
		bytesOut: prometheus.NewDesc("netcluster_delivered_bytes_total", "Frame bytes of the messages queued for the channel's agents.", ch, nil),
		drop:     prometheus.NewDesc("netcluster_messages_dropped_total", "Messages dropped for the channel's agents because they read too slowly.", ch, nil),
		slow:     prometheus.NewDesc("netcluster_slow_consumers_disconnected_total", "Agents of the channel disconnected as slow consumers.", ch, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.start, c.agents, c.msgsIn, c.bytesIn, c.msgsOut, c.bytesOut, c.drop, c.slow} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A channel removed by a reload
// disappears; one added starts from zero.
func (c *statsCollector) Collect(out chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	chans := s.sortedChannelsLocked()
	started := s.started
	s.mu.Unlock()
	out <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, s.nodeID)
	if !started.IsZero() {
		out <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(started.UnixNano())/1e9)
	}
	counter := func(d *prometheus.Desc, v uint64, name string) {
		out <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
	}
	for _, ch := range chans {
		out <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(ch.memberCount()), ch.name)
		counter(c.msgsIn, ch.stats.msgsIn.Load(), ch.name)
		counter(c.bytesIn, ch.stats.bytesIn.Load(), ch.name)
		counter(c.msgsOut, ch.stats.msgsOut.Load(), ch.name)
		counter(c.bytesOut, ch.stats.bytesOut.Load(), ch.name)
		counter(c.drop, ch.stats.dropped.Load(), ch.name)
		counter(c.slow, ch.stats.slow.Load(), ch.name)
	}
}

// memberCount returns the number of the channel's connections.
func (ch *channel) memberCount() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.conns)
}
