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

	// retiring counts listeners replaced by a reload and still stopping.
	retiring sync.WaitGroup
}

// start listens on addr ("" means off) and serves s's metrics.
func (m *metricsEndpoint) start(s *Server, addr string) error {
	commit, _, err := m.prepare(s, addr)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// prepare opens a listener for addr if it differs from the address in
// use. It returns commit, which serves on the new listener and stops the
// old one, and abort, which closes the new listener; the caller calls one
// of them. If prepare fails nothing changed. commit cannot fail and does
// not wait: a scrape in progress needs the server's lock, which a reload
// holds, so the old listener stops in the background and stop waits for
// it. A reload calls prepare while checking everything that can fail, and
// commit once nothing can.
func (m *metricsEndpoint) prepare(s *Server, addr string) (commit, abort func(), err error) {
	m.mu.Lock()
	same := addr == m.addr
	m.mu.Unlock()
	if same {
		return func() {}, func() {}, nil
	}
	var ln net.Listener
	if addr != "" {
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("netcluster: metrics: %w", err)
		}
	}
	abort = func() {
		if ln != nil {
			ln.Close()
		}
	}
	commit = func() {
		m.mu.Lock()
		old, oldDone := m.hs, m.done
		m.addr, m.hs, m.ln, m.done = addr, nil, nil, nil
		m.mu.Unlock()
		if old != nil {
			m.retiring.Add(1)
			go func() {
				defer m.retiring.Done()
				shutdownHTTP(old, oldDone)
			}()
		}
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
	}
	return commit, abort, nil
}

// stop closes the listener, waits briefly for scrapes in progress, and
// waits for the serving goroutines, those of listeners a reload replaced
// included. Call it without the server's lock. It is a no-op when the
// endpoint is off.
func (m *metricsEndpoint) stop() {
	m.mu.Lock()
	hs, done := m.hs, m.done
	m.addr, m.hs, m.ln, m.done = "", nil, nil, nil
	m.mu.Unlock()
	if hs != nil {
		shutdownHTTP(hs, done)
	}
	m.retiring.Wait()
}

// shutdownHTTP stops hs, waiting a little for requests in progress, then
// for its Serve to return (done).
func shutdownHTTP(hs *http.Server, done <-chan struct{}) {
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

	// The network side, collected only with connecttonet.
	netSent, netSendDropped, netReceived, netRejected *prometheus.Desc
	netRetransmits, peerDelivered, peerRecovered      *prometheus.Desc
	peerLostDatagrams, peerLostMessages, peerLastSeen *prometheus.Desc
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

		netSent:           prometheus.NewDesc("netcluster_net_messages_sent_total", "Messages handed to the network.", nil, nil),
		netSendDropped:    prometheus.NewDesc("netcluster_net_messages_not_sent_total", "Messages not sent: send queue full too long, too large, or the network closing.", nil, nil),
		netReceived:       prometheus.NewDesc("netcluster_net_messages_received_total", "Messages received from other nodes.", nil, nil),
		netRejected:       prometheus.NewDesc("netcluster_net_datagrams_rejected_total", "Datagrams refused, by reason.", []string{"reason"}, nil),
		netRetransmits:    prometheus.NewDesc("netcluster_net_retransmits_total", "Datagrams sent again after a NAK.", nil, nil),
		peerDelivered:     prometheus.NewDesc("netcluster_net_peer_messages_delivered_total", "Messages delivered from the peer.", []string{"peer", "name"}, nil),
		peerRecovered:     prometheus.NewDesc("netcluster_net_peer_datagrams_recovered_total", "Gaps in the peer's stream filled by a retransmission.", []string{"peer", "name"}, nil),
		peerLostDatagrams: prometheus.NewDesc("netcluster_net_peer_datagrams_lost_total", "Sequences of the peer given up (unrecovered).", []string{"peer", "name"}, nil),
		peerLostMessages:  prometheus.NewDesc("netcluster_net_peer_messages_lost_total", "Messages of the peer never delivered.", []string{"peer", "name"}, nil),
		peerLastSeen:      prometheus.NewDesc("netcluster_net_peer_last_seen_seconds", "When a datagram of the peer was last accepted, in seconds since the Unix epoch.", []string{"peer", "name"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.start, c.agents, c.msgsIn, c.bytesIn, c.msgsOut, c.bytesOut, c.drop, c.slow,
		c.netSent, c.netSendDropped, c.netReceived, c.netRejected, c.netRetransmits,
		c.peerDelivered, c.peerRecovered, c.peerLostDatagrams, c.peerLostMessages, c.peerLastSeen} {
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
	if n := s.netStats(); n != nil {
		c.collectNet(out, n)
	}
}

// collectNet reports the network side's counters.
func (c *statsCollector) collectNet(out chan<- prometheus.Metric, n *NetStats) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		out <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.netSent, n.Sent)
	counter(c.netSendDropped, n.SendDropped)
	counter(c.netReceived, n.Received)
	counter(c.netRetransmits, n.Retransmits)
	for reason, v := range n.Rejected {
		counter(c.netRejected, v, reason)
	}
	for _, p := range n.Peers {
		counter(c.peerDelivered, p.Delivered, p.Node, p.Name)
		counter(c.peerRecovered, p.Recovered, p.Node, p.Name)
		counter(c.peerLostDatagrams, p.LostDatagrams, p.Node, p.Name)
		counter(c.peerLostMessages, p.LostMessages, p.Node, p.Name)
		if !p.LastSeen.IsZero() {
			out <- prometheus.MustNewConstMetric(c.peerLastSeen, prometheus.GaugeValue, float64(p.LastSeen.UnixNano())/1e9, p.Node, p.Name)
		}
	}
}

// memberCount returns the number of the channel's connections.
func (ch *channel) memberCount() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.conns)
}
