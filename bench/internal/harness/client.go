package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

// Channel is the netcluster channel every scenario uses; NATS subjects
// carry the same names as netcluster events.
const Channel = "bench"

// client is what a worker needs of either system: publish raw bytes under
// a name, subscribe to a name or pattern, and make sure the server has
// acted on everything sent so far.
type client interface {
	Publish(ctx context.Context, subject string, data []byte) error
	Subscribe(subject string, h func(data []byte)) error
	// Sync returns once the server has processed everything this client
	// sent before it, subscriptions included.
	Sync(ctx context.Context) error
	// Dropped counts the messages for this client that the system dropped
	// because the client was slow.
	Dropped() uint64
	// Lost reports an error that cost the client its connection, if any.
	Lost() error
	Close()
}

// ncClient is a netcluster Agent on the bench channel.
type ncClient struct {
	a     *netcluster.Agent
	drops atomic.Uint64
	mu    sync.Mutex
	lost  error
}

var _ client = (*ncClient)(nil)

// dialNC connects an agent to the bench channel through the sockets in
// socketDir, or through dial when it is not nil; borrow connects it
// WithBorrowedMessages (the handlers, Subscribe's, use the data only
// while they run).
func dialNC(ctx context.Context, socketDir string, dial func(context.Context, string) (net.Conn, error), borrow bool) (*ncClient, error) {
	c := &ncClient{}
	opts := []netcluster.Option{
		netcluster.WithErrorHandler(c.onError),
		netcluster.WithoutReconnect(),
		netcluster.WithStateHandler(func(s netcluster.State, err error) {
			if s == netcluster.Disconnected && err != nil {
				c.setLost(err)
			}
		}),
	}
	if borrow {
		opts = append(opts, netcluster.WithBorrowedMessages())
	}
	if dial != nil {
		opts = append(opts, netcluster.WithDialer(dial))
	} else {
		opts = append(opts, netcluster.WithSocketDir(socketDir))
	}
	a, err := netcluster.Connect(ctx, Channel, opts...)
	if err != nil {
		return nil, err
	}
	c.a = a
	return c, nil
}

func (c *ncClient) onError(err error) {
	var de *netcluster.DroppedError
	if errors.As(err, &de) {
		c.drops.Add(de.Count)
		return
	}
	c.setLost(err)
}

func (c *ncClient) setLost(err error) {
	c.mu.Lock()
	if c.lost == nil {
		c.lost = err
	}
	c.mu.Unlock()
}

func (c *ncClient) Publish(ctx context.Context, event string, data []byte) error {
	return c.a.EmitRaw(ctx, event, data)
}

func (c *ncClient) Subscribe(pattern string, h func([]byte)) error {
	_, err := c.a.On(pattern, func(m *netcluster.Message) { h(m.Data) })
	return err
}

func (c *ncClient) Sync(ctx context.Context) error { return c.a.Flush(ctx) }
func (c *ncClient) Dropped() uint64                { return c.drops.Load() }

func (c *ncClient) Lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

func (c *ncClient) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.a.Close(ctx)
}

// natsClient is a nats.go connection with default options.
type natsClient struct {
	nc   *nats.Conn
	mu   sync.Mutex
	subs []*nats.Subscription
	lost error
}

var _ client = (*natsClient)(nil)

// dialNATS connects to url, or to the in-process server ns when it is not
// nil.
func dialNATS(url string, ns *natsserver.Server) (*natsClient, error) {
	c := &natsClient{}
	opts := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if !errors.Is(err, nats.ErrSlowConsumer) { // counted by Dropped
				c.setLost(err)
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.setLost(err)
			}
		}),
	}
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return c, nil
}

func (c *natsClient) setLost(err error) {
	c.mu.Lock()
	if c.lost == nil {
		c.lost = err
	}
	c.mu.Unlock()
}

func (c *natsClient) Publish(_ context.Context, subject string, data []byte) error {
	return c.nc.Publish(subject, data)
}

func (c *natsClient) Subscribe(subject string, h func([]byte)) error {
	s, err := c.nc.Subscribe(subject, func(m *nats.Msg) { h(m.Data) })
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return nil
}

func (c *natsClient) Sync(ctx context.Context) error { return c.nc.FlushWithContext(ctx) }

func (c *natsClient) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, s := range c.subs {
		if d, err := s.Dropped(); err == nil {
			n += uint64(d)
		}
	}
	return n
}

func (c *natsClient) Lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

func (c *natsClient) Close() { c.nc.Close() }

// BusConfig is the netcluster server configuration of every scenario: the
// bench channel (no propagation) and the control channel, no control
// agent, every limit at its default.
func BusConfig(socketDir string) *config.Config {
	cfg := config.New()
	cfg.StartControl = false
	cfg.SocketDir = socketDir
	cfg.Channels[Channel] = config.NewChannel()
	return cfg
}

// BusConfigFile is BusConfig as an ncserver configuration file.
func BusConfigFile(socketDir string) []byte {
	return fmt.Appendf(nil, `{
  "socketdir": %q,
  "startcontrol": false,
  "channels": {"control": {}, %q: {}},
}
`, socketDir, Channel)
}

// inProcess is a server embedded in the worker, for S6.
type inProcess struct {
	nc   *server.Server
	nats *natsserver.Server
}

func startInProcess(ctx context.Context, sys System) (*inProcess, error) {
	p := &inProcess{}
	switch sys {
	case Netcluster:
		s, err := server.New(server.Config{Bus: BusConfig(""), NoListen: true})
		if err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		p.nc = s
	case NATS:
		s, err := natsserver.NewServer(&natsserver.Options{DontListen: true, NoSigs: true, NoLog: true})
		if err != nil {
			return nil, err
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			s.Shutdown()
			return nil, errors.New("nats-server not ready")
		}
		p.nats = s
	}
	return p, nil
}

func (p *inProcess) dial(ctx context.Context) (client, error) {
	if p.nc != nil {
		return dialNC(ctx, "", p.nc.Dial, false)
	}
	return dialNATS("", p.nats)
}

func (p *inProcess) close() {
	if p.nc != nil {
		p.nc.Close()
	}
	if p.nats != nil {
		p.nats.Shutdown()
		p.nats.WaitForShutdown()
	}
}
