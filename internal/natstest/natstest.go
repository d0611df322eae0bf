// Package natstest starts NATS servers embedded in tests: one server, or a
// cluster joined by routes, on 127.0.0.1 with JetStream in temporary
// directories. It is for tests only.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options tune a server; the zero value is a plain server with JetStream.
type Options struct {
	MaxPayload     int32 // max_payload; 0 means the server's default (1 MiB)
	NoJetStream    bool  // leave JetStream off
	User, Password string
	Token          string
	TLS            *server.Options // if set, its TLS fields are copied
}

// Server is one embedded NATS server.
type Server struct {
	*server.Server
	opts *server.Options
}

// URL returns the server's client URL, nats://127.0.0.1:PORT.
func (s *Server) URL() string { return s.ClientURL() }

// Run starts a server and shuts it down at the end of the test.
func Run(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, serverOptions(t, o, "n1", -1))
}

func serverOptions(t testing.TB, o Options, name string, port int) *server.Options {
	opts := &server.Options{
		ServerName:         name,
		Host:               "127.0.0.1",
		Port:               port,
		NoLog:              true,
		NoSigs:             true,
		MaxPayload:         o.MaxPayload,
		JetStream:          !o.NoJetStream,
		StoreDir:           t.TempDir(),
		Username:           o.User,
		Password:           o.Password,
		Authorization:      o.Token,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	if o.TLS != nil {
		opts.TLS = o.TLS.TLS
		opts.TLSConfig = o.TLS.TLSConfig
		opts.TLSVerify = o.TLS.TLSVerify
		opts.TLSTimeout = 2
	}
	return opts
}

// readyWait bounds how long a server may take to listen for clients.
const readyWait = 30 * time.Second

func start(t testing.TB, opts *server.Options) *Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	// The server listens for clients only once JetStream has started (its
	// store recovered, on a restart): 10 s was too short for that under
	// -race on a loaded machine.
	if !s.ReadyForConnections(readyWait) {
		t.Fatalf("nats server %s not ready after %v", opts.ServerName, readyWait)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{Server: s, opts: opts}
}

// Cluster is n servers joined by routes.
type Cluster struct {
	Servers []*Server
	ports   []int          // client ports, chosen by each server's first start, kept across restarts
	routes  []int          // route ports, kept across restarts
	holds   []net.Listener // route ports held until their server first starts
	o       Options
	t       testing.TB
	dirs    []string
}

// RunCluster starts n servers joined by routes on 127.0.0.1, with
// JetStream clustered, and waits until every route is up and JetStream
// has a leader.
func RunCluster(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	c := &Cluster{o: o, t: t}
	// The route ports must be known before the first server starts (each
	// names the others'): each is held open until its server takes it,
	// else another process's listener or outgoing connection could take
	// it while the servers before start (seconds under load), and that
	// server would never be ready. Client ports are the servers' choice.
	t.Cleanup(c.release)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.holds = append(c.holds, l)
		c.ports = append(c.ports, -1)
		c.routes = append(c.routes, l.Addr().(*net.TCPAddr).Port)
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.Servers = make([]*Server, n)
	for i := range n {
		c.Servers[i] = c.startNode(i)
	}
	c.WaitReady()
	return c
}

func (c *Cluster) startNode(i int) *Server {
	opts := serverOptions(c.t, c.o, fmt.Sprintf("n%d", i+1), c.ports[i])
	opts.StoreDir = c.dirs[i]
	opts.Cluster.Name = "nc-test"
	opts.Cluster.Host = "127.0.0.1"
	opts.Cluster.Port = c.routes[i]
	if l := c.holds[i]; l != nil {
		l.Close()
		c.holds[i] = nil
	}
	for j, p := range c.routes {
		if j != i {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", p))...)
		}
	}
	s := start(c.t, opts)
	c.ports[i] = s.Addr().(*net.TCPAddr).Port
	return s
}

// release closes the route ports still held (RunCluster failed).
func (c *Cluster) release() {
	for i, l := range c.holds {
		if l != nil {
			l.Close()
			c.holds[i] = nil
		}
	}
}

// WaitReady waits until every running server has its whole pool of
// routes to every other running server, and JetStream has a meta leader.
// (The servers of a cluster do not forward each other's messages: one
// with no route to a peer neither reaches its subscribers nor learns of
// them, and answers requests for them with no responders. NumRoutes
// counts pooled connections: with pools of 3, the routes to one peer
// would pass for a full mesh of 3 servers.)
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		var up []*Server
		for _, s := range c.Servers {
			if s != nil && s.Running() {
				up = append(up, s)
			}
		}
		for _, s := range up {
			if !c.o.NoJetStream && !s.JetStreamIsCurrent() {
				ok = false
			}
			routes := c.routesTo(s)
			for _, o := range up {
				if o != s && routes[o.Name()] < c.poolSize() {
					ok = false
				}
			}
		}
		leader := c.o.NoJetStream
		for _, s := range c.Servers {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				leader = true
			}
		}
		if ok && leader {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("nats cluster not ready")
}

// poolSize is the number of pooled routes each server of c has to each
// other.
func (c *Cluster) poolSize() int {
	return server.DEFAULT_ROUTE_POOL_SIZE // serverOptions leaves Cluster.PoolSize at 0: the default
}

// routesTo counts s's pooled routes (those of every account but the
// pinned system account's) by the name of the server at their other end.
func (c *Cluster) routesTo(s *Server) map[string]int {
	out := map[string]int{}
	rz, err := s.Routez(nil)
	if err != nil {
		return out
	}
	for _, r := range rz.Routes {
		if r.Account == "" {
			out[r.RemoteName]++
		}
	}
	return out
}

// Kill shuts server i down.
func (c *Cluster) Kill(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Restart starts server i again, on its ports and store.
func (c *Cluster) Restart(i int) {
	c.Servers[i] = c.startNode(i)
}

// URLs returns the client URLs of all servers, comma separated.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.ports))
	for i, p := range c.ports {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	return out
}

// URL returns server i's client URL.
func (c *Cluster) URL(i int) string { return c.URLs()[i] }

// String lists the cluster's URLs.
func (c *Cluster) String() string { return strings.Join(c.URLs(), ",") }
