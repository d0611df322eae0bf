package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/control"
)

// TestControlNetwork: with the network on, the stats command carries the
// network figures, per peer included (package metrics tests the same of
// the metrics). It uses the
// network tests' helpers (nt*): two servers on lo.
func TestControlNetwork(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	src := `{"channels": {"A": {"propagatetonet": true}}}`
	n1 := ntStart(t, ntConfig(t, group, port, src))
	n2 := ntStart(t, ntConfig(t, group, port, src))
	ntPeers(t, n1, n2)
	_, in := ntListen(t, n2, "A", ".*")
	a := ctlAgent(t, n1.dir, "A")
	if err := a.Emit(ctlCtx(t), "over", 1); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "the message over the network", func() bool { return len(in.get()) == 1 })

	rep := ctlAsk(t, ctlControl(t, n2.dir), `{"cmd":"stats"}`)
	if !rep.OK {
		t.Fatal(rep.Error)
	}
	var st control.Stats
	if err := json.Unmarshal(rep.Result, &st); err != nil {
		t.Fatal(err)
	}
	if st.Network == nil || st.Network.Node != n2.srv.NodeID() || st.Network.Received != 1 {
		t.Fatalf("network stats %+v", st.Network)
	}
	var peer *NetPeerStats
	for i, p := range st.Network.Peers {
		if p.Node == n1.srv.NodeID() {
			peer = &st.Network.Peers[i]
		}
	}
	if peer == nil || peer.Delivered != 1 || peer.LastSeen.IsZero() {
		t.Fatalf("peer %s in %+v", n1.srv.NodeID(), st.Network.Peers)
	}

	// Without the network, stats does not mention it.
	_, dir := ctlServer(t, "")
	rep = ctlAsk(t, ctlControl(t, dir), `{"cmd":"stats"}`)
	if strings.Contains(string(rep.Result), "network") {
		t.Errorf("stats without network: %s", rep.Result)
	}
}
