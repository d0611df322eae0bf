package server

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// TestBackboneQueueOriginIsEnvelope: a NATS peer's message for a queue
// group whose frame names the receiving server in its Node field reaches
// the member with the peer's node id, not as a local message (empty
// node): the origin is the envelope's node, as on plain subscriptions.
func TestBackboneQueueOriginIsEnvelope(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()},
		`{"nodename": "host1", "channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	got := make(chan string, 4)
	a := ctlAgent(t, h.dir, "A", netcluster.WithAgentID("m"))
	if _, err := a.OnQueue("job", "workers", func(m *netcluster.Message) { got <- m.Node }); err != nil {
		t.Fatal(err)
	}
	a.Flush(ctlCtx(t))
	const subj = "netcluster.default.A.job"
	bbGroups(t, h, subj+" A.workers.")

	peer := [8]byte{0xfe, 1, 2, 3, 4, 5, 6, 7}
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Node: h.srv.NodeID(), Agent: "x", Event: "job", Data: []byte("1")})
	env := []byte{1, 1} // version, kind Msg
	env = append(env, peer[:]...)
	env = binary.BigEndian.AppendUint32(env, 1)
	env = binary.BigEndian.AppendUint64(env, 1)
	env = append(env, frame...)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(subj, env); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case node := <-got:
		if want := hex.EncodeToString(peer[:]); node != want {
			t.Fatalf("member got node %q, want the envelope's %q", node, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the member got nothing")
	}
}
