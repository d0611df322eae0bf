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
)

// metricsStopTimeout bounds how long stopping the endpoint waits for
// scrapes in progress.
const metricsStopTimeout = 2 * time.Second

// metricsEndpoint is the optional HTTP listener of the config key
// "metrics": a health check at /healthz, and the handler of
// Config.Metrics (package metrics: Prometheus at /metrics) for the rest.
// Its zero value is an endpoint that is off.
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
	if addr != "" && s.cfg.Metrics == nil {
		return nil, nil, fmt.Errorf("netcluster: metrics: the config key \"metrics\" is %q, but server.Config.Metrics is nil: "+
			"an embedder that wants the endpoint sets it (to metrics.Handler, of package metrics); otherwise leave \"metrics\" empty", addr)
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

// metricsHandler serves /healthz itself and every other path with the
// handler of Config.Metrics.
func metricsHandler(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.cfg.Metrics(s))
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
