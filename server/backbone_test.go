package server

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/transport"
)

// The backbone tests run NATS servers embedded in the test (one, or three
// joined by routes, JetStream in temporary directories) and ncservers in
// this process, each with its own socket directory, joined only by NATS.

// bbConfig parses a config whose nats block uses urls.
func bbConfig(t testing.TB, urls []string, src string) *config.Config {
	t.Helper()
	q := make([]string, len(urls))
	for i, u := range urls {
		q[i] = fmt.Sprintf("%q", u)
	}
	src = strings.Replace(src, "{", fmt.Sprintf(`{"connecttonet": true, "nats": {"urls": [%s]},`, strings.Join(q, ",")), 1)
	bus, err := config.Parse([]byte(src), t.Name()+".jsonc")
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// bbConnected waits until each node's backbone is connected and
// subscribed to subjects subjects.
func bbConnected(t testing.TB, nodes ...*ntNode) {
	t.Helper()
	ntWait(t, "backbones connected", func() bool {
		for _, n := range nodes {
			b := n.srv.Stats().Backbone
			if b == nil || b.State != "connected" {
				return false
			}
		}
		return true
	})
}

// bbSubjects waits until n subscribes to exactly want.
func bbSubjects(t testing.TB, n *ntNode, want ...string) {
	t.Helper()
	ntWait(t, fmt.Sprintf("subjects %q", want), func() bool {
		got := withoutAnswers(n.srv.Stats().Backbone.Subjects)
		return strings.Join(got, " ") == strings.Join(want, " ")
	})
	n.srv.bb.Load().b.Flush() // the NATS server has them
}

// bbGroups waits until n has exactly the queue subscriptions want, each
// given as "SUBJECT CHANNELTOKEN.GROUP." (the queue name without its
// pattern hash), and the NATS server has them.
func bbGroups(t testing.TB, n *ntNode, want ...string) {
	t.Helper()
	var got []string
	defer func() {
		if t.Failed() {
			t.Logf("queue subscriptions: %q", got)
		}
	}()
	ntWait(t, fmt.Sprintf("queue subscriptions %q", want), func() bool {
		got = n.srv.Stats().Backbone.Groups
		if len(got) != len(want) {
			return false
		}
		for i, g := range got {
			if !strings.HasPrefix(g, want[i]) || strings.Count(g[len(want[i]):], ".") != 0 {
				return false
			}
		}
		return true
	})
	n.srv.bb.Load().b.FlushGroups()
}

// bbRouted waits until NATS server s holds the subscription subject of
// NATS server from, which its route brings some time after from has it:
// until then s drops what its clients publish for it. (The account's
// Interest is no count of the subscriptions matching: it stops at the
// first level that has any.)
func bbRouted(t testing.TB, s *natstest.Server, from, subject string) {
	t.Helper()
	ntWait(t, fmt.Sprintf("NATS server %s to have %s's subscription %s", s.Name(), from, subject), func() bool {
		rz, err := s.Routez(&server.RoutezOptions{Subscriptions: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rz.Routes {
			if r.RemoteName == from && slices.Contains(r.Subs, subject) {
				return true
			}
		}
		return false
	})
}

// natsConn finds the client connection named name on s.
func natsConn(t testing.TB, s *natstest.Server, name string) *server.ConnInfo {
	t.Helper()
	cz, err := s.Connz(&server.ConnzOptions{Subscriptions: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestBackboneThreeHosts(t *testing.T) {
	t.Parallel()
	nc := natstest.RunCluster(t, 3, natstest.Options{NoJetStream: true})
	hostCfg := func(i int, channels string) *config.Config {
		return bbConfig(t, []string{nc.URL(i)}, `{"nodename": "host`+fmt.Sprint(i+1)+`", "channels": `+channels+`}`)
	}
	chans := `{"A": {"propagatetonet": true, "propagatetochannels": "B"}, "B": {}, "C": {"propagatetonet": true}}`
	h1 := ntStart(t, hostCfg(0, chans))
	h2 := ntStart(t, hostCfg(1, chans))
	h3 := ntStart(t, hostCfg(2, chans))
	bbConnected(t, h1, h2, h3)

	_, h1other := ntListen(t, h1, "A", "ev")
	_, h2regex := ntListen(t, h2, "A", "ev|seq")
	_, h2b := ntListen(t, h2, "B", "ev") // A propagates to B on host 2
	h3litAgent, h3lit := ntListen(t, h3, "A", "ev")
	h3dotAgent, h3dot := ntListen(t, h3, "A", `ord\..*`)
	// h3 has no agent on C; h2 one on C listening to something else.
	_, h2c := ntListen(t, h2, "C", "other")
	bbSubjects(t, h2, "netcluster.default.A.>", "netcluster.default.B.ev", "netcluster.default.C.other")
	bbSubjects(t, h3, "netcluster.default.A.ev", "netcluster.default.A.ord.>")
	bbSubjects(t, h1, "netcluster.default.A.ev")
	// Host 1 publishes on NATS node n1, which learns of the other hosts'
	// subscriptions by its routes, some time after their own nodes have
	// them: until then it drops what host 1 sends them.
	bbRouted(t, nc.Servers[0], "n2", "netcluster.default.A.>")
	bbRouted(t, nc.Servers[0], "n3", "netcluster.default.A.ev")
	bbRouted(t, nc.Servers[0], "n3", "netcluster.default.A.ord.>")

	emitter := ctlAgent(t, h1.dir, "A", netcluster.WithAgentID("emitter"))
	cEmitter := ctlAgent(t, h1.dir, "C")
	ctx := ctlCtx(t)
	h3conn := natsConn(t, nc.Servers[2], "host3")
	if h3conn == nil {
		t.Fatal("host3 not connected to NATS node 3")
	}
	before := h3conn.OutMsgs
	for range 5 {
		if err := cEmitter.Emit(ctx, "ev", "on C"); err != nil {
			t.Fatal(err)
		}
	}
	if err := emitter.Emit(ctx, "ev", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := emitter.Emit(ctx, "ord.new", 7); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "delivery", func() bool {
		return len(h2regex.get()) == 1 && len(h2b.get()) == 1 && len(h3lit.get()) == 1 && len(h3dot.get()) == 1 && len(h1other.get()) == 1
	})
	time.Sleep(200 * time.Millisecond) // room for duplicates to show
	for name, in := range map[string]*ntInbox{"host1 other agent": h1other, "host2 ev|seq": h2regex, "host2 B": h2b, "host3 ev": h3lit, "host3 ord": h3dot} {
		if n := len(in.get()); n != 1 {
			t.Errorf("%s got %d messages, want exactly 1", name, n)
		}
	}
	m := h2regex.get()[0]
	if m.Node != h1.srv.NodeID() || m.Channel != "A" || m.Agent != "emitter" || m.Event != "ev" || string(m.Data) != `{"x":1}` || !m.JSON {
		t.Errorf("on host 2: %+v; want node %s, channel A, agent emitter, event ev, data {\"x\":1}", m, h1.srv.NodeID())
	}
	if m := h3dot.get()[0]; m.Event != "ord.new" || m.Node != h1.srv.NodeID() {
		t.Errorf("on host 3: %+v", m)
	}
	if m := h1other.get()[0]; m.Node != "" {
		t.Errorf("host 1's own agent got a message with node %q: an echo", m.Node)
	}
	if len(h2c.get()) != 0 {
		t.Errorf("host 2's C agent (listening to \"other\") got %d messages", len(h2c.get()))
	}
	// NATS itself sent host 3 nothing of channel C: it holds no
	// subscription of host 3's for C, and host 3's connection got only
	// the two A messages.
	h3conn = natsConn(t, nc.Servers[2], "host3")
	for _, s := range h3conn.Subs {
		if strings.HasPrefix(s, "netcluster.default.C.") {
			t.Errorf("host 3 subscribes to %s", s)
		}
	}
	if got := h3conn.OutMsgs - before; got != 2 {
		t.Errorf("NATS sent host 3 %d messages, want 2 (nothing of C)", got)
	}
	// Each message was published once, however many hosts received it.
	if got := h1.srv.Stats().Backbone.MsgsOut; got != 7 {
		t.Errorf("host 1 published %d messages, want 7", got)
	}

	// A legacy (Node.js) agent on host 1 talks to host 2 and hears host 3.
	legacy, err := net.Dial("unix", transport.SocketPath(h1.dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	if _, err := legacy.Write([]byte(`{"channel":"A","broadcast":false,"event":"seq","data":[1,2]}` + "\x00")); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "the legacy message on host 2", func() bool { return len(h2regex.get()) == 2 })
	if m := h2regex.get()[1]; m.Event != "seq" || string(m.Data) != "[1,2]" || !strings.HasPrefix(m.Agent, "legacy-") || m.Node != h1.srv.NodeID() {
		t.Errorf("legacy message on host 2: %+v", m)
	}
	bbSubjects(t, h1, "netcluster.default.A.>") // the legacy agent listens to everything
	bbRouted(t, nc.Servers[2], "n1", "netcluster.default.A.>")
	h3emit := ctlAgent(t, h3.dir, "A")
	if err := h3emit.Emit(ctx, "hello", "from 3"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(legacy)
	legacy.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"channel":"A","broadcast":false,"event":"hello","data":"from 3"}` + "\x00"; line != want {
		t.Errorf("legacy agent read %q, want %q", line, want)
	}

	// The last agent gone, the subscription goes.
	h3emit.Close(ctx)
	h3litAgent.Close(ctx)
	bbSubjects(t, h3, "netcluster.default.A.ord.>")
	h3dotAgent.Close(ctx)
	bbSubjects(t, h3)
}

func TestBackboneLargeMessage(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true, MaxPayload: 1 << 20})
	chans := `{"channels": {"A": {"propagatetonet": true}}}`
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, chans))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, chans))
	bbConnected(t, h1, h2)
	_, in := ntListen(t, h2, "A", "big")
	bbSubjects(t, h2, "netcluster.default.A.big")
	big := make([]byte, 16<<20-200)
	for i := range big {
		big[i] = byte(i % 251)
	}
	a := ctlAgent(t, h1.dir, "A")
	if err := a.EmitRaw(ctlCtx(t), "big", big); err != nil {
		t.Fatal(err)
	}
	bbWait(t, "16 MiB through 1 MiB max_payload", 60*time.Second, func() bool { return len(in.get()) == 1 })
	if m := in.get()[0]; len(m.Data) != len(big) || string(m.Data) != string(big) {
		t.Errorf("got %d bytes, want the %d sent, intact", len(m.Data), len(big))
	}
}

// bbWait is ntWait with a longer bound, for what the race detector and a
// loaded machine slow down most (16 MiB copies, JetStream elections).
func bbWait(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
