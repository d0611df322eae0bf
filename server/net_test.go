package server

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
)

// The helpers of the network tests are prefixed nt: other tests of this
// package are written alongside.
//
// These tests run two servers in this process on the loopback interface:
// multicast on "lo" (set explicitly) with TTL 0, so nothing leaves the
// host. Each test uses its own group and port.

// ntGroup returns a random administratively scoped group and port, so
// tests running in parallel (and other runs) do not hear each other.
func ntGroup() (string, int) {
	return fmt.Sprintf("239.255.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250)), 20000 + rand.IntN(30000)
}

// ntConsole collects console output.
type ntConsole struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *ntConsole) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *ntConsole) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// ntNode is a server of a test and its socket directory.
type ntNode struct {
	srv     *Server
	dir     string
	console *ntConsole
}

// ntConfig parses a JWCC config, adding the network keys every node of
// these tests shares: loopback, TTL 0, the given group.
func ntConfig(t testing.TB, group string, port int, src string) *config.Config {
	t.Helper()
	src = strings.Replace(src, "{", fmt.Sprintf(`{"connecttonet": true, "interface": "lo", "ttl": 0, "addr": %q, "port": %d,`, group, port), 1)
	bus, err := config.Parse([]byte(src), t.Name()+".jsonc")
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// ntStart starts a server on bus in a new socket directory.
func ntStart(t testing.TB, bus *config.Config) *ntNode {
	t.Helper()
	n := &ntNode{dir: testutil.ShortDir(t), console: &ntConsole{}}
	bus.SocketDir = n.dir
	srv, err := New(Config{Bus: bus, Console: n.console})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n.srv = srv
	return n
}

// ntInbox records the messages an agent receives.
type ntInbox struct {
	mu   sync.Mutex
	msgs []*netcluster.Message
}

func (in *ntInbox) handle(m *netcluster.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

func (in *ntInbox) get() []*netcluster.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*netcluster.Message(nil), in.msgs...)
}

// ntListen connects an agent on channel listening to pattern.
func ntListen(t testing.TB, n *ntNode, channel, pattern string) (*netcluster.Agent, *ntInbox) {
	t.Helper()
	a := ctlAgent(t, n.dir, channel)
	in := &ntInbox{}
	if _, err := a.On(pattern, in.handle); err != nil {
		t.Fatal(err)
	}
	// A ping round trip: the server has the listener.
	if err := a.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	return a, in
}

// ntWait is testutil.Eventually under the name the network tests use.
func ntWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, cond)
}

// ntPeers waits until every node knows every other (a heartbeat crossed).
func ntPeers(t testing.TB, nodes ...*ntNode) {
	t.Helper()
	ntWait(t, "peers", func() bool {
		for _, n := range nodes {
			ns := n.srv.Stats().Network
			if ns == nil || len(ns.Peers) < len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

// TestNetTwoServers runs two servers on one host (separate socket
// directories, one group on lo) and checks the routing rules of network
// messages.
func TestNetTwoServers(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	n1 := ntStart(t, ntConfig(t, group, port, `{
		"nodename": "one",
		"channels": {
			"A": {"propagatetonet": true, "propagatetochannels": "B"},
			"B": {},
			"C": {"propagatetonet": true},
			"X": {"propagatetonet": true},
			"L": {"propagatetonet": false},
		},
	}`))
	n2 := ntStart(t, ntConfig(t, group, port, `{
		"nodename": "two",
		"dumpnet": true,
		"channels": {
			"A": {"propagatetonet": true, "propagatetochannels": "B|D"},
			"B": {},
			"C": {"acceptnet": false},
			"D": {},
			"L": {},
		},
	}`))
	if n1.srv.NodeID() == n2.srv.NodeID() {
		t.Fatal("two servers share a node id")
	}
	ntPeers(t, n1, n2)

	_, a1in := ntListen(t, n1, "A", ".*")
	_, b1in := ntListen(t, n1, "B", ".*")
	_, a2in := ntListen(t, n2, "A", "ev|seq")
	_, b2in := ntListen(t, n2, "B", "ev")
	_, c2in := ntListen(t, n2, "C", ".*")
	_, d2in := ntListen(t, n2, "D", ".*")
	_, l2in := ntListen(t, n2, "L", ".*")
	emitter := ctlAgent(t, n1.dir, "A", netcluster.WithAgentID("emitter"))
	ctx := ctlCtx(t)

	if err := emitter.Emit(ctx, "ev", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "delivery on node two", func() bool {
		return len(a2in.get()) == 1 && len(b2in.get()) == 1 && len(d2in.get()) == 1
	})
	m := a2in.get()[0]
	if m.Node != n1.srv.NodeID() || m.Channel != "A" || m.Agent != "emitter" || m.Event != "ev" || string(m.Data) != `{"x":1}` || !m.JSON {
		t.Errorf("on node two: %+v; want node %s, channel A, agent emitter, event ev, data {\"x\":1}", m, n1.srv.NodeID())
	}
	if got := b2in.get()[0]; got.Node != n1.srv.NodeID() || got.Channel != "A" {
		t.Errorf("propagated on node two: node %q channel %q", got.Node, got.Channel)
	}
	// Locally: A's other agent and B (propagation), with no node.
	ntWait(t, "local delivery", func() bool { return len(a1in.get()) == 1 && len(b1in.get()) == 1 })
	if got := a1in.get()[0]; got.Node != "" {
		t.Errorf("local delivery has node %q", got.Node)
	}

	// Order, and no echo: node one's A agent gets each message once, and
	// node two never sends network messages back although its A has
	// propagatetonet.
	const n = 2000
	for i := range n {
		if err := emitter.Emit(ctx, "seq", i); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "sequence on node two", func() bool { return len(a2in.get()) == 1+n })
	for i, m := range a2in.get()[1:] {
		var got int
		if err := m.Decode(&got); err != nil || got != i {
			t.Fatalf("message %d on node two is %s (err %v): out of order", i, m.Data, err)
		}
	}
	// Refused (acceptnet false), unknown channel, channel without
	// propagatetonet.
	for _, ch := range []string{"C", "X", "L"} {
		a := ctlAgent(t, n1.dir, ch)
		if err := a.Emit(ctx, "ev", ch); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "refused and unknown counted", func() bool {
		ns := n2.srv.Stats().Network
		return ns.Refused == 1 && ns.UnknownChannel == 1
	})
	// A marker after them: once it arrived, nothing else is in flight.
	if err := emitter.Emit(ctx, "ev", "marker"); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "marker", func() bool { return len(a2in.get()) == n+2 })
	time.Sleep(50 * time.Millisecond)
	if got := len(a1in.get()); got != 1+n+1 {
		t.Errorf("node one's A agent got %d messages, want %d (once each, no echo)", got, n+2)
	}
	if len(c2in.get())+len(l2in.get()) != 0 {
		t.Errorf("C (acceptnet false) got %d, L (no propagatetonet) got %d; want none", len(c2in.get()), len(l2in.get()))
	}
	s1, s2 := n1.srv.Stats().Network, n2.srv.Stats().Network
	if s2.Sent != 0 {
		t.Errorf("node two sent %d messages to the network; want 0 (network messages never go back)", s2.Sent)
	}
	if want := uint64(1 + n + 2 + 1); s1.Sent != want {
		t.Errorf("node one sent %d, want %d", s1.Sent, want)
	}
	if s1.Echoes == 0 {
		t.Error("node one heard no echo of its own datagrams: is loopback on?")
	}
	if len(s2.Peers) != 1 || s2.Peers[0].Name != "one" || s2.Peers[0].Node != n1.srv.NodeID() || s2.Peers[0].LostMessages != 0 {
		t.Errorf("node two's peers: %+v", s2.Peers)
	}
	// dumpnet: one line per network message received.
	dump := n2.console.String()
	if c := strings.Count(dump, " net node="+n1.srv.NodeID()); c != n+4 {
		t.Errorf("node two's dumpnet printed %d lines, want %d", c, n+4)
	}
	if !strings.Contains(dump, "channel=C event=\"ev\"") || !strings.Contains(dump, "dropped=acceptnet-false") || !strings.Contains(dump, "channel=X event=\"ev\"") || !strings.Contains(dump, "dropped=unknown-channel") {
		t.Errorf("dumpnet lacks the dropped messages:\n%s", dump[len(dump)-600:])
	}
	if !strings.Contains(dump, `name="one"`) || !strings.Contains(dump, `channel=A event="ev" agent=emitter size=7`) {
		t.Errorf("dumpnet line lacks name, channel, event or size:\n%.300s", dump)
	}
	if strings.Contains(n1.console.String(), " net node=") {
		t.Error("node one printed dumpnet lines without dumpnet")
	}
}

// TestNetReload changes keys (in place) and the port (a rebind) of
// running servers: agents stay connected, and messages flow again.
func TestNetReload(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	k1 := `{"id": 1, "secret": "` + ctlSecret + `"}`
	k2 := `{"id": 2, "secret": "` + strings.Repeat("B", 42) + `E="}`
	src := func(keys string) string {
		return fmt.Sprintf(`{"keys": [%s], "channels": {"A": {"propagatetonet": true}}}`, keys)
	}
	cfg := func(port int, keys string) *config.Config { return ntConfig(t, group, port, src(keys)) }
	n1, n2 := ntStart(t, cfg(port, k1)), ntStart(t, cfg(port, k1))
	ntPeers(t, n1, n2)
	e := ctlAgent(t, n1.dir, "A")
	_, in := ntListen(t, n2, "A", ".*")
	ctx := ctlCtx(t)
	sent := 0
	check := func(step string) {
		t.Helper()
		sent++
		if err := e.Emit(ctx, "step", step); err != nil {
			t.Fatal(err)
		}
		ntWait(t, step, func() bool { return len(in.get()) == sent })
	}
	check("k1")
	reload := func(n *ntNode, bus *config.Config) {
		t.Helper()
		bus.SocketDir = n.dir
		if err := n.srv.Reload(bus); err != nil {
			t.Fatal(err)
		}
	}
	// Rotation: [k1,k2] everywhere, then [k2,k1], then [k2].
	for _, keys := range []string{k1 + "," + k2, k2 + "," + k1, k2} {
		reload(n2, cfg(port, keys))
		reload(n1, cfg(port, keys))
		check("keys " + keys)
	}
	if st := n2.srv.Stats().Network; st.Peers[0].Restarts != 0 || len(st.Rejected) != 0 {
		t.Errorf("key changes restarted the session or refused datagrams: %+v", st)
	}
	// A new port: both rebind; the agents stay connected.
	port2 := port + 1
	reload(n2, cfg(port2, k2))
	reload(n1, cfg(port2, k2))
	if got := n1.srv.Stats().Network.Group; got != fmt.Sprintf("%s:%d", group, port2) {
		t.Fatalf("after the rebind the group is %s", got)
	}
	check("port2")
	if e.State() != netcluster.Connected {
		t.Errorf("emitter state %v after reloads", e.State())
	}
	// Network off, then on again.
	off := cfg(port2, k2)
	off.ConnectToNet = false
	reload(n1, off)
	if n1.srv.Stats().Network != nil {
		t.Error("network stats present with the network off")
	}
	reload(n1, cfg(port2, k2))
	ntWait(t, "peers again", func() bool {
		for _, p := range n2.srv.Stats().Network.Peers {
			if p.Restarts > 0 {
				return true
			}
		}
		return false
	})
	check("on again")
}

// TestNetWrongKey: a node sealing with a key the other lacks delivers
// nothing, and the receiver counts and logs the refused datagrams.
func TestNetWrongKey(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	n1 := ntStart(t, ntConfig(t, group, port, `{"keys": [{"id": 1, "secret": "`+ctlSecret+`"}], "channels": {"A": {"propagatetonet": true}}}`))
	n2 := ntStart(t, ntConfig(t, group, port, `{"keys": [{"id": 1, "secret": "`+strings.Repeat("C", 42)+`E="}], "channels": {"A": {}}}`))
	n3 := ntStart(t, ntConfig(t, group, port, `{"channels": {"A": {}}}`)) // plaintext
	_, in2 := ntListen(t, n2, "A", ".*")
	_, in3 := ntListen(t, n3, "A", ".*")
	e := ctlAgent(t, n1.dir, "A")
	for i := range 10 {
		if err := e.Emit(ctlCtx(t), "ev", i); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "refusals", func() bool {
		return n2.srv.Stats().Network.Rejected["auth"] > 0 && n3.srv.Stats().Network.Rejected["no-keys"] > 0
	})
	time.Sleep(100 * time.Millisecond)
	if len(in2.get())+len(in3.get()) != 0 {
		t.Errorf("wrong key delivered %d, plaintext node delivered %d; want none", len(in2.get()), len(in3.get()))
	}
}

// TestNetStartErrors: a reserved group fails Start with an error that
// suggests a 239.x group, and leaves no socket behind.
func TestNetStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, want string }{
		{"reserved", `{"addr": "224.0.0.0", "interface": "lo"}`, "use an administratively scoped group such as 239.255.44.54"},
		{"no such interface", `{"interface": "nc-nosuch0"}`, `interface "nc-nosuch0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(tc.src, "{", `{"connecttonet": true, "ttl": 0,`, 1)
			bus, err := config.Parse([]byte(src), "t.jsonc")
			if err != nil {
				t.Fatal(err)
			}
			bus.SocketDir = testutil.ShortDir(t)
			srv, err := New(Config{Bus: bus, Console: ctlDiscard{}})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			err = srv.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v; want an error containing %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(bus.SocketDir); len(ents) != 0 {
				t.Errorf("sockets left after a failed start: %v", ents)
			}
		})
	}
}
