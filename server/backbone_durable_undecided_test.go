package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// TestBackboneDurableWaitsForAListener: a connection whose wire is not
// yet known (it has sent nothing: a native agent's preamble is on its
// way, or it is a legacy agent that only listens) listens to everything
// meanwhile, but is no listener a durable channel starts consuming for.
// It was: its consumer then delivered and acknowledged what was stored
// for it into that connection's outbox, which the agent's preamble
// discards (notLegacy), or to no one once the connection had left the
// index and before the agent's Listen. So TestBackboneRestartDurable lost
// the 100 messages stored while host 2 was down, about once in 20 runs,
// when its new agent's preamble came late.
func TestBackboneDurableWaitsForAListener(t *testing.T) {
	t.Parallel()
	const n = 50
	h2 := durableStored(t, n)

	// A connection that says nothing yet. Host 2 must not consume for it:
	// give the consumer time to deliver, were it to (less than
	// legacyWait, after which the connection would be a legacy agent,
	// which gets everything).
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(h2.dir, "D"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	for end := time.Now().Add(time.Second); time.Now().Before(end) && h2.srv.Stats().Backbone.Routed < n; {
		time.Sleep(10 * time.Millisecond)
	}

	// Now a native agent that listens to everything: it gets them all.
	r := &ctlRaw{t: t, nc: nc, rd: wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	r.write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "late", Channel: "D"})...))
	if f := r.next(); f.Type != wire.TypeWelcome {
		t.Fatalf("got %s; want welcome", wire.TypeName(f.Type))
	}
	r.write(wire.AppendListen(nil, wire.TypeListen, ".*"))
	var got []int
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < n {
		f, err := r.rd.Next()
		if err != nil {
			t.Errorf("after %d messages: %v; host 2's backbone %+v", len(got), err, h2.srv.Stats().Backbone)
			break
		}
		if f.Type != wire.TypeMsg {
			continue
		}
		v, err := wire.ParseMsg(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		i, err := strconv.Atoi(string(v.Data))
		if err != nil {
			t.Fatalf("message data %q is not a number", v.Data)
		}
		got = append(got, i)
	}
	checkExactlyInOrder(t, "stored before the agent listened", got, n)
}

// durableStored starts two hosts with a durable channel D, no agent on
// host 2, and has host 1 store 0..n-1 on D; it returns host 2.
func durableStored(t *testing.T, n int) *ntNode {
	t.Helper()
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("u1")))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("u2")))
	bbConnected(t, h1, h2)
	emitNumbered(t, ctlAgent(t, h1.dir, "D"), "n", n, func(int) {})
	// JetStream's stream and consumers are being set up meanwhile, which
	// can take seconds on a busy machine (stores are retried).
	defer func() {
		if t.Failed() {
			t.Logf("host 1's backbone: %+v", h1.srv.Stats().Backbone)
		}
	}()
	// MsgsOut counts a durable message once JetStream has stored it
	// (Buffered holds other things, never 0 for long).
	bbWait(t, "the messages stored", 30*time.Second, func() bool {
		return h1.srv.Stats().Backbone.MsgsOut >= uint64(n)
	})
	return h2
}

// TestBackboneDurableLegacyListener: a legacy agent that only listens is
// a listener a durable channel consumes for once its silence marks it
// legacy and it joins (it was in the index before it was a member).
func TestBackboneDurableLegacyListener(t *testing.T) {
	t.Parallel()
	const n = 50
	h2 := durableStored(t, n)
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(h2.dir, "D"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	var got []int
	for len(got) < n {
		env, err := br.ReadBytes(0)
		if err != nil {
			t.Errorf("after %d messages: %v; host 2's backbone %+v", len(got), err, h2.srv.Stats().Backbone)
			break
		}
		var m struct{ Data json.RawMessage }
		if err := json.Unmarshal(bytes.TrimSuffix(env, []byte{0}), &m); err != nil {
			t.Fatalf("envelope %q: %v", env, err)
		}
		i, err := strconv.Atoi(strings.Trim(string(m.Data), `"`))
		if err != nil {
			t.Fatalf("envelope %q: data is not a number", env)
		}
		got = append(got, i)
	}
	checkExactlyInOrder(t, "stored before the legacy agent connected", got, n)
}
