package server

import (
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// The frames of one delivery (a batch from NATS) are routed each as if
// alone: those that share the last one's channel, agent and node, compared
// rather than decoded, as well as those that do not, an older publisher's
// frame without its node, a frame of another channel, and malformed ones,
// which are counted and skipped.
func TestBackboneDeliverBatch(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}, "C": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	_, inA := ntListen(t, h, "A", "ev")
	_, inC := ntListen(t, h, "C", "ev")
	node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
	name := hex.EncodeToString(node[:])
	msg := func(channel, agent, node, event, data string) []byte {
		return wire.AppendMsg(nil, &wire.Msg{Channel: channel, Agent: agent, Node: node, Event: event, Data: []byte(data)})
	}
	cut := msg("A", "far", name, "ev", "x")
	at := wire.HeaderLen + 1 + 2 + 4 + 17 // the event's length, after flags, channel, agent and node
	cut[at], cut[at+1] = 0xff, 0xff       // past the frame's end
	var batch []byte
	for _, f := range [][]byte{
		msg("A", "far", name, "ev", "1"),
		msg("A", "far", name, "ev", "2"),   // same origin
		msg("A", "far", name, "", "bad"),   // same origin, no event: malformed
		msg("A", "far", name, "ev", "3"),   // same origin
		cut,                                // same origin, cut short: malformed
		msg("A", "other", name, "ev", "4"), // another agent
		msg("A", "other", "", "ev", "5"),   // no node: written in
		msg("A", "other", name, "ev", "6"),
		msg("C", "other", name, "ev", "c1"), // another channel
		msg("A", "other", name, "ev", "7"),
	} {
		batch = append(batch, f...)
	}
	bb := h.srv.bb.Load()
	if heard := bb.deliver(node, batch, backbone.Stream{}); heard != len(batch) {
		t.Errorf("deliver heard %d bytes, want all %d (the last frame reached a listener)", heard, len(batch))
	}
	ntWait(t, "the batch", func() bool { return len(inA.get()) == 7 && len(inC.get()) == 1 })
	for i, m := range inA.get() {
		agent := "far"
		if i >= 3 {
			agent = "other"
		}
		if m.Node != name || m.Agent != agent || m.Channel != "A" || m.Event != "ev" || string(m.Data) != fmt.Sprint(i+1) {
			t.Errorf("message %d on A: %+v; want %s from %s, node %s", i, m, fmt.Sprint(i+1), agent, name)
		}
	}
	if m := inC.get()[0]; m.Node != name || m.Channel != "C" || string(m.Data) != "c1" {
		t.Errorf("message on C: %+v", m)
	}
	if got := bb.st.malformed.Load(); got != 2 {
		t.Errorf("malformed %d, want 2", got)
	}
	if got := bb.st.received.Load(); got != 10 {
		t.Errorf("received %d, want 10", got)
	}
}

// bbDeliverSetup returns a server with a backbone and a listener on
// channel A that reads and discards everything, and a batch of n frames
// of 128 bytes of data from one agent of node, as NATS brings them.
func bbDeliverSetup(t testing.TB, n int) (*bbNode, backbone.NodeID, []byte) {
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	r := ctlDialRaw(t, h.dir, "A", "listener")
	r.write(wire.AppendListen(nil, wire.TypeListen, "ev"))
	r.sync(1)
	go io.Copy(io.Discard, r.nc) // ends when the test closes the connection
	node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
	var batch []byte
	for range n {
		batch = wire.AppendMsg(batch, &wire.Msg{Channel: "A", Agent: "far", Node: hex.EncodeToString(node[:]), Event: "ev", Data: make([]byte, 128)})
	}
	return h.srv.bb.Load(), node, batch
}

// deliver says how far its frames reached a listener: to the end of the
// last frame that reached one, walked, as a run or as one stream, and
// nowhere once the listener has left (a durable consumer sends the rest
// back to JetStream, docs/PROTOCOL.md §12).
func TestBackboneDeliverHeard(t *testing.T) {
	t.Parallel()
	bb, node, _ := bbDeliverSetup(t, 0)
	name := hex.EncodeToString(node[:])
	msg := func(agent, event string) []byte {
		return wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: agent, Node: name, Event: event, Data: []byte("x")})
	}
	var mixed []byte
	var want int
	for i, f := range [][]byte{
		msg("far", "ev"), msg("far", "ev"), // a run
		msg("far", "no"), // no listener's
		msg("other", "ev"),
		msg("far", "no"), msg("far", "no"), // a run no listener's
	} {
		mixed = append(mixed, f...)
		if i == 3 {
			want = len(mixed)
		}
	}
	two := mixed[:2*len(msg("far", "ev"))] // one stream
	stream := streamOf(two, true)
	if heard := bb.deliver(node, mixed, backbone.Stream{}); heard != want {
		t.Errorf("walked: heard %d bytes, want %d (the end of the last frame listened to)", heard, want)
	}
	if heard := bb.deliver(node, two, stream); heard != len(two) {
		t.Errorf("a stream: heard %d bytes, want all %d", heard, len(two))
	}
	ch := (*bb.chans.Load())["A"]
	for _, c := range ch.members() {
		c.close()
	}
	ntWait(t, "the listener gone", func() bool { return !bb.listens("A") })
	if heard := bb.deliver(node, mixed, backbone.Stream{}); heard != 0 {
		t.Errorf("walked, no listener: heard %d bytes, want 0", heard)
	}
	if heard := bb.deliver(node, two, stream); heard != 0 {
		t.Errorf("a stream, no listener: heard %d bytes, want 0", heard)
	}
}

// Routing a batch from NATS allocates nothing per message, walked or as
// one stream.
func TestBackboneDeliverAllocatesNothing(t *testing.T) {
	bb, node, batch := bbDeliverSetup(t, 64)
	for _, stream := range []bool{false, true} {
		s := streamOf(batch, stream)
		for range 100 { // warm up: buffers and the match cache
			bb.deliver(node, batch, s)
		}
		if n := testing.AllocsPerRun(1000, func() { bb.deliver(node, batch, s) }); n != 0 {
			t.Fatalf("deliver allocates %.2f times per batch of 64 (stream %v)", n, stream)
		}
	}
}

// BenchmarkBackboneDeliver: the receiving server's work per message from
// NATS (S9's host 2), from the batch to the listener's socket: a batch of
// one stream, walked or as the backbone says it is one.
func BenchmarkBackboneDeliver(b *testing.B) {
	const n = 64
	for _, stream := range []bool{false, true} {
		b.Run(fmt.Sprintf("stream=%v", stream), func(b *testing.B) {
			bb, node, batch := bbDeliverSetup(b, n)
			s := streamOf(batch, stream)
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				bb.deliver(node, batch, s)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
