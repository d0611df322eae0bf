// Package server is netcluster's embeddable server: it owns one socket per
// channel, routes each message to the agents that listen to it, and
// propagates messages between channels by the rules of its configuration.
//
// Use New to make a Server from a Config, Start to listen, and Shutdown or
// Close to stop. ncserver is a thin command around this package; any Go
// program can embed the same server, and agents in that program can reach
// it without a socket through Dial.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/memconn"
	"github.com/netcluster/netcluster/internal/transport"
)

// Config configures a Server. The zero value is valid: the embedded
// default configuration, no logging, console output on os.Stdout.
type Config struct {
	// Bus is the bus configuration, as read from an ncserver config file.
	// Nil means config.Default(). The server keeps its own copy.
	Bus *config.Config

	// Logger receives the server's logs. Nil discards them.
	Logger *slog.Logger

	// Console receives the dumptoconsole and dumpnet lines. Nil means
	// os.Stdout.
	Console io.Writer

	// NoListen makes the server listen on no socket: only agents in the
	// same process reach it, through Dial.
	NoListen bool

	// Metrics makes the handler of the HTTP endpoint that the config key
	// "metrics" opens: it gets every path but /healthz, which the server
	// answers itself. Package metrics has one (metrics.Handler: Prometheus
	// at /metrics), which ncserver sets; this package does not link
	// Prometheus. Nil: a configuration that sets "metrics" fails Start and
	// Reload with an error naming the key. It is called each time the
	// endpoint opens a listener.
	Metrics func(*Server) http.Handler

	// Listeners are listening sockets opened by someone else, by channel
	// name (ncserver passes those of systemd's socket activation). The
	// server accepts a channel's agents on its listener instead of opening
	// the channel's socket, never moves or chmods it on a reload, and
	// closes it when the channel closes, without removing the socket file
	// (a net.FileListener's Close does not). Each is used once: a channel
	// removed by a reload and added again opens a socket of its own. New
	// refuses a name that is not a channel of Bus.
	Listeners map[string]net.Listener
}

// Errors returned by a Server.
var (
	// ErrServerClosed is returned by Start and Dial after Shutdown or Close.
	ErrServerClosed = errors.New("netcluster: server closed")
	// ErrUnknownChannel is returned for a channel the configuration lacks.
	ErrUnknownChannel = errors.New("netcluster: unknown channel")
)

// Server routes messages between the agents of its channels. Its methods
// may be called concurrently. A Server is started once; after Shutdown or
// Close it cannot be started again.
type Server struct {
	cfg     Config
	log     *slog.Logger
	console *consoleWriter
	nodeID  string
	started time.Time

	// mu guards the fields below it and serialises reloads.
	mu       sync.Mutex
	bus      *config.Config
	channels map[string]*channel
	state    int                     // stateNew, stateRunning, stateClosed
	passed   map[string]net.Listener // Config.Listeners not yet used
	memLimit memoryLimit             // the process's memory limit while memorylimit is set (memory.go)

	limits atomic.Pointer[limits]
	byName atomic.Pointer[map[string]*channel] // the channels, for answers; set with every relink
	net    atomic.Pointer[netNode]             // nil without connecttonet
	bb     atomic.Pointer[bbNode]              // nil without connecttonet and nats
	// bbNumbers, under mu, is where the last backbone's publications got
	// to, once a reload closed it without a successor: a later one (the
	// same node id) goes on from them.
	bbNumbers *backbone.Numbers

	metrics metricsEndpoint // the "metrics" listener; off when not configured
	rates   rater           // samples the counters for Stats' rates while running
	acks    acker           // acknowledges version 3 agents' messages once delivered
	// lastJoin is when an agent last joined (UnixNano), for resumeWait.
	lastJoin atomic.Int64
	// fanout is the StreamEnd budget of each uid (streams_fanout.go);
	// watchPending the Watch entries held for the grace (streams_watch.go).
	fanout       fanout
	watchPending atomic.Int64

	conns  sync.WaitGroup // one per connection: its goroutines
	liveMu sync.Mutex
	live   map[*conn]struct{} // every served connection, joined or in its handshake
	counts connCounts         // connections held, for the limits; under liveMu
	// partial is the bytes of frames in progress, over all connections.
	partial atomic.Int64
	warns   warnLimiter    // rate limit of the slow consumer warnings
	loops   sync.WaitGroup // accept loops
	nextID  atomic.Uint64

	// inputs is the read buffers lent to connections (conn_input.go).
	inputs atomic.Int64
	parked parker // connections whose readers wait for them (conn_park_linux.go)
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// New returns a Server for cfg. It checks the configuration but opens
// nothing: Start does.
func New(cfg Config) (*Server, error) {
	bus := cfg.Bus
	if bus == nil {
		bus = config.Default()
	} else {
		bus = bus.Clone()
	}
	if err := bus.Validate(); err != nil {
		return nil, err
	}
	passed := make(map[string]net.Listener, len(cfg.Listeners))
	for name, ln := range cfg.Listeners {
		if bus.Channels[name] == nil || ln == nil || cfg.NoListen {
			return nil, fmt.Errorf("netcluster: Config.Listeners: channel %q: not a channel of the configuration, a nil listener, or NoListen set", name)
		}
		passed[name] = ln
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Console == nil {
		cfg.Console = os.Stdout
	}
	var id [8]byte
	rand.Read(id[:])
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		console:  &consoleWriter{w: cfg.Console},
		nodeID:   hex.EncodeToString(id[:]),
		bus:      bus,
		channels: make(map[string]*channel),
		passed:   passed,
		live:     make(map[*conn]struct{}),
		counts:   connCounts{byUID: make(map[int]int)},
	}
	s.limits.Store(limitsOf(bus))
	return s, nil
}

// limits are the bounds of the configuration in force.
type limits struct {
	maxFrame       int
	outBuffer      int
	disconnectSlow bool
	maxConns       int // connections: in all, per channel, per uid (conn_limits.go)
	maxChanConns   int
	maxUIDConns    int
	partialFrames  int // bytes of frames in progress, over all connections
}

func limitsOf(bus *config.Config) *limits {
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	return &limits{
		maxFrame:       bus.MaxFrame,
		outBuffer:      bus.OutBuffer,
		disconnectSlow: bus.SlowConsumer == "disconnect",
		maxConns:       or(bus.MaxConnections, config.DefaultMaxConnections),
		maxChanConns:   or(bus.MaxChannelConnections, config.DefaultMaxChannelConnections),
		maxUIDConns:    or(bus.MaxUIDConnections, config.DefaultMaxUIDConnections),
		partialFrames:  or(bus.PartialFrames, config.DefaultPartialFrames),
	}
}

// NodeID returns the server's random id, new at every New.
func (s *Server) NodeID() string { return s.nodeID }

// Start opens every channel's socket and starts accepting agents. If a
// socket cannot be opened, Start closes the ones it opened and returns an
// error naming the path. ctx bounds only the start itself.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return errors.New("netcluster: server already started")
	case stateClosed:
		return ErrServerClosed
	}
	s.started = time.Now()
	for _, name := range s.bus.ChannelNames() {
		if err := ctx.Err(); err != nil {
			s.closeChannelsLocked()
			return err
		}
		ch, err := s.openChannel(s.bus, name)
		if err != nil {
			s.closeChannelsLocked()
			return err
		}
		s.channels[name] = ch
	}
	s.relinkLocked(s.bus)
	if err := s.metrics.start(s, s.bus.Metrics); err != nil {
		s.closeChannelsLocked()
		return err
	}
	if err := s.startNetLocked(s.bus); err != nil {
		s.metrics.stop()
		s.closeChannelsLocked()
		return err
	}
	if err := s.startBackboneLocked(s.bus); err != nil {
		s.stopNet()
		s.metrics.stop()
		s.closeChannelsLocked()
		return err
	}
	s.state = stateRunning
	s.memLimit.apply(s.bus.MemoryLimit)
	s.rates.start(s) // its baseline precedes every agent's message
	for _, ch := range s.channels {
		s.startAccepting(ch)
	}
	s.acks.start()
	return nil
}

// openChannel makes a channel of bus and, unless NoListen, its listener.
func (s *Server) openChannel(bus *config.Config, name string) (*channel, error) {
	ch := newChannel(s, name)
	ch.settings.Store(&settings{Channel: *bus.Channels[name]})
	if s.cfg.NoListen {
		return ch, nil
	}
	if ln := s.passed[name]; ln != nil {
		delete(s.passed, name)
		ch.ln, ch.path, ch.passed = ln, ln.Addr().String(), true
		s.log.Info("channel listening", "channel", name, "path", ch.path, "passed", true)
		return ch, nil
	}
	path := transport.SocketPath(bus.ResolveSocketDir(), name)
	ln, err := transport.Listen(path, transport.ListenConfig{Mode: modeFor(bus, name)})
	if err != nil {
		return nil, fmt.Errorf("netcluster: channel %s: %w", name, err)
	}
	ch.ln = ln
	ch.path = path
	s.log.Info("channel listening", "channel", name, "path", path)
	return ch, nil
}

// relinkLocked gives every channel its settings from bus, with its
// propagation targets: the other channels whose whole name matches its
// propagatetochannels rule. Each channel's settings are replaced in one
// store, so routing never sees a channel without its targets.
func (s *Server) relinkLocked(bus *config.Config) {
	sorted := s.sortedChannelsLocked()
	byName := maps.Clone(s.channels)
	s.byName.Store(&byName)
	for _, ch := range s.channels {
		st := &settings{Channel: *bus.Channels[ch.name]}
		for _, t := range sorted {
			if t != ch && st.Propagate.Matches(t.name) {
				st.targets = append(st.targets, t)
			}
		}
		ch.settings.Store(st)
	}
}

func (s *Server) sortedChannelsLocked() []*channel {
	out := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (s *Server) startAccepting(ch *channel) {
	ln := ch.ln
	if ln == nil {
		return
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		ch.acceptLoop(ln)
	}()
}

// MetricsAddr returns the address of the metrics endpoint (config key
// "metrics"), or nil when it is off.
func (s *Server) MetricsAddr() net.Addr { return s.metrics.listenAddr() }

// Addrs returns where each channel listens (channel name → socket path),
// empty with NoListen.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.channels))
	for name, ch := range s.channels {
		if ch.path != "" {
			out[name] = ch.path
		}
	}
	return out
}

// Bus returns a copy of the configuration in force.
func (s *Server) Bus() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bus.Clone()
}

// inProcessBuffer bounds each direction of a Dial's in-memory pipe. With
// memconn's default of 4 MiB a writer that runs ahead fills megabytes of
// ring, which the copy in and the copy out then both find out of cache (in
// S6b's profiles the pipe's two copies were 13 % of the CPU; 256 KiB
// halved that, and 128 KiB did no better). An agent writes up to 64 KiB
// at a time, so it still runs batches ahead of the server before it waits;
// the server's larger writes wait part-way, which a socket does too.
const inProcessBuffer = 256 << 10

// Dial connects to a channel in memory, without a socket, for an agent in
// the same process (see netcluster.WithDialer). The connection speaks the
// native wire like any other and counts as a member of the channel.
func (s *Server) Dial(ctx context.Context, channel string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		if s.state == stateClosed {
			return nil, ErrServerClosed
		}
		return nil, errors.New("netcluster: server not started")
	}
	ch := s.channels[channel]
	if ch == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownChannel, channel)
	}
	a, b := memconn.Pipe("netcluster-"+channel, memconn.WithBufferSize(inProcessBuffer))
	ch.serve(b)
	return a, nil
}

// Shutdown stops the server gracefully: it stops accepting, removes the
// sockets, tells every agent the server is going away, writes out what is
// queued for them while ctx allows, then closes every connection and waits
// for all the server's goroutines. It returns ctx's error if ctx ended
// first; the server is closed either way.
func (s *Server) Shutdown(ctx context.Context) error {
	conns, ok := s.beginClose()
	if !ok {
		return nil
	}
	s.closeHandshaking(conns)
	for _, c := range conns {
		c.closeWithError(errShutdown)
	}
	done := make(chan struct{})
	go func() {
		for _, c := range conns {
			c.waitFlushed(ctx.Done())
		}
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	for _, c := range conns {
		c.close()
	}
	<-done
	s.conns.Wait()
	return err
}

// Close stops the server at once: listeners and connections are closed
// and queued messages are discarded. It waits for the server's goroutines.
// During a Shutdown it cuts the Shutdown short. Additional calls are
// no-ops.
func (s *Server) Close() error {
	conns, _ := s.beginClose()
	s.liveMu.Lock()
	for c := range s.live {
		conns = append(conns, c)
	}
	s.liveMu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.conns.Wait()
	return nil
}

// closeHandshaking closes the connections that are not among the joined
// ones: a connection still in its handshake must not hold up a shutdown.
func (s *Server) closeHandshaking(joined []*conn) {
	member := make(map[*conn]bool, len(joined))
	for _, c := range joined {
		member[c] = true
	}
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for c := range s.live {
		if !member[c] {
			c.close()
		}
	}
}

// beginClose marks the server closed, closes its listeners, waits for the
// accept loops, and returns the connections left. ok is false if the
// server was already closed.
func (s *Server) beginClose() (conns []*conn, ok bool) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return nil, false
	}
	s.state = stateClosed
	s.memLimit.apply(0)
	chans := s.channels
	for name, ln := range s.passed {
		ln.Close()
		delete(s.passed, name)
	}
	s.mu.Unlock()
	for _, ch := range chans {
		ch.closeListener()
	}
	s.loops.Wait()
	s.rates.stop()
	s.acks.stop()
	s.stopNet()
	s.stopBackbone()
	s.metrics.stop()
	for _, ch := range chans {
		conns = append(conns, ch.members()...)
	}
	return conns, true
}

func (s *Server) closeChannelsLocked() {
	for name, ch := range s.channels {
		ch.closeListener()
		delete(s.channels, name)
	}
}

// running reports whether the server accepts new connections.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateRunning
}
