package server

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// A listener slower than a burst from NATS loses nothing: the backbone
// waits for room in its outbox (64 KiB here, 16 messages) instead of
// dropping, and the stream arrives whole and in order. The burst (1 MB,
// sixteen outboxes, more than the socket buffers) is one the listener
// reads within its wait credit (bbWaitBudget, 1 s) even under -race on a
// loaded machine: 256 messages of 4 KB, as a thousand of 1 KB took more
// than the credit there, a message costing much the same work on its way
// whatever its size (and four of 4 KB still fit in the last quarter of
// the outbox, where the backbone waits); a listener slower for longer
// loses part of it, counted (TestBackboneSlowListenerDoesNotPaceOthers).
// The listener pauses 1 ms every 32 messages, 8 pauses: with one every 5
// (51 pauses, each much longer than 1 ms on a loaded machine) a clean CI
// under -race took 1.8 s and lost the last 136. Without waitRoom it still
// loses from about the 17th message on.
func TestBackboneSlowListenerLossless(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"outbuffer": 65536, "channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h1, h2)
	slow := ctlDialRaw(t, h2.dir, "A", "slow")
	slow.write(wire.AppendListen(nil, wire.TypeListen, "seq"))
	slow.sync(1)
	bbSubjects(t, h2, "netcluster.default.A.seq")

	const n = 256
	a := ctlAgent(t, h1.dir, "A")
	ctx := ctlCtx(t)
	data := make([]byte, 4000)
	for i := range n {
		binary.BigEndian.PutUint32(data, uint32(i))
		if err := a.EmitRaw(ctx, "seq", data); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < n; {
		f := slow.next()
		switch f.Type {
		case wire.TypeDropped:
			k, _ := wire.ParseU64(f.Payload)
			t.Fatalf("after %d messages (%v) the server dropped %d for the slow listener", i, time.Since(start), k)
		case wire.TypeMsg:
			v, err := wire.ParseMsg(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint32(v.Data); got != uint32(i) {
				t.Fatalf("message %d carries number %d", i, got)
			}
			if string(v.Node) != h1.srv.NodeID() {
				t.Fatalf("message %d: node %q, want host 1's %s", i, v.Node, h1.srv.NodeID())
			}
			i++
			if i%32 == 0 {
				time.Sleep(time.Millisecond) // slower than NATS delivers
			}
		}
	}
	if ci, _ := h2.srv.Channel("A"); ci.Dropped != 0 {
		t.Errorf("host 2 counts %d dropped on A", ci.Dropped)
	}
}

// A frame whose Node field is empty (as servers before the node was
// written in by the publisher sent them) is delivered with the origin
// node written in, as one that carries it.
func TestBackboneDeliverWritesNode(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	_, in := ntListen(t, h, "A", "ev")
	node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
	name := hex.EncodeToString(node[:])
	bb := h.srv.bb.Load()
	for _, n := range []string{"", name} {
		bb.deliver(node, wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "far", Node: n, Event: "ev", Data: []byte("d" + n)}), backbone.Stream{})
	}
	ntWait(t, "both messages", func() bool { return len(in.get()) == 2 })
	for i, m := range in.get() {
		if m.Node != name || m.Agent != "far" || m.Channel != "A" || m.Event != "ev" {
			t.Errorf("message %d: %+v; want node %s, agent far", i, m, name)
		}
	}
	if got := string(in.get()[1].Data); got != "d"+name {
		t.Errorf("data %q", got)
	}
}

// msgView reads the fields AppendMsg wrote as ParseMsg does.
func TestMsgView(t *testing.T) {
	t.Parallel()
	for _, m := range []wire.Msg{
		{},
		{Flags: wire.FlagJSON, Channel: "A", Agent: "agent", Node: "0102030405060708", Event: "ev", Data: []byte("{}")},
		{Channel: "a.b", Agent: string(make([]byte, 255)), Event: string(make([]byte, 300)), Data: make([]byte, 5000)},
	} {
		frame := wire.AppendMsg(nil, &m)
		want, err := wire.ParseMsg(frame[wire.HeaderLen:])
		if err != nil {
			t.Fatal(err)
		}
		got := msgView(frame, &m)
		if got.Flags != want.Flags || string(got.Channel) != string(want.Channel) || string(got.Agent) != string(want.Agent) ||
			string(got.Node) != string(want.Node) || string(got.Event) != string(want.Event) || string(got.Data) != string(want.Data) {
			t.Errorf("msgView(%+v) = %+v, want %+v", m, got, want)
		}
	}
}

// An agent that never reads costs the backbone's deliveries a bounded wait
// (bbStallBudget), not a stop: another listener of the host gets the whole
// stream, and what the stuck one cannot hold is dropped and counted. The
// stream (2 MB) is in 4 KB messages: the other listener must keep up
// within its own wait credit (bbWaitBudget), and 2,000 of 1 KB were more
// than it could read in that on a loaded machine under -race. (Four of
// 4 KB fit in the last quarter of the stuck one's outbox, where the
// backbone waits for it.)
func TestBackboneStuckListenerBounded(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"outbuffer": 65536, "channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h1, h2)
	stuck := ctlDialRaw(t, h2.dir, "A", "stuck") // never read after this
	stuck.write(wire.AppendListen(nil, wire.TypeListen, "seq"))
	stuck.sync(1)
	_, in := ntListen(t, h2, "A", "seq")
	bbSubjects(t, h2, "netcluster.default.A.seq")

	const n = 500
	a := ctlAgent(t, h1.dir, "A")
	ctx := ctlCtx(t)
	data := make([]byte, 4000)
	start := time.Now()
	defer func() {
		if t.Failed() {
			ci, _ := h2.srv.Channel("A")
			t.Logf("the other listener got %d of %d messages; %d dropped on A", len(in.get()), n, ci.Dropped)
		}
	}()
	for range n {
		if err := a.EmitRaw(ctx, "seq", data); err != nil {
			t.Fatal(err)
		}
	}
	bbWait(t, "the stream at the other listener", 30*time.Second, func() bool { return len(in.get()) == n })
	ci, _ := h2.srv.Channel("A")
	if ci.Dropped == 0 {
		t.Error("nothing dropped for the agent that never reads")
	}
	t.Logf("%d messages past a stuck listener in %v, %d dropped for it", n, time.Since(start), ci.Dropped)
}
