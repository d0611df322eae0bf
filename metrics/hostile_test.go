package metrics

import (
	"strings"
	"testing"

	"github.com/netcluster/netcluster/server"
)

// A peer's name comes from the network (its heartbeats, up to 255 bytes):
// whatever its bytes, it stays one label value. It cannot end the value,
// add lines or families, or make the parser refuse the page.
func TestHostilePeerName(t *testing.T) {
	names := []string{
		"x\"} 1\nfake_total 1\n# TYPE fake_total counter\n",
		"back\\\\slash\\\"\\n",
		"\r\x00\t\x7f ",
		strings.Repeat("\xff", 255),
		"\xc3", // a truncated sequence
	}
	st := server.Stats{NodeID: "n\"\n", Network: &server.NetStats{Rejected: map[string]uint64{"bad\n\"": 1}}}
	for i, n := range names {
		st.Network.Peers = append(st.Network.Peers, server.NetPeerStats{Node: strings.Repeat("0", i+1), Name: n, Delivered: 1})
	}
	var e exposition
	addStats(&e, st)
	text := string(e.appendText(nil))
	if err := checkExposition(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	mf := parse(t, text)
	if mf["fake_total"] != nil {
		t.Fatalf("a peer's name added a family:\n%s", text)
	}
	got := map[string]string{}
	for _, m := range mf["netcluster_net_peer_messages_delivered_total"].GetMetric() {
		var node, name string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "peer":
				node = l.GetValue()
			case "name":
				name = l.GetValue()
			}
		}
		got[node] = name
	}
	for i, n := range names {
		if want := strings.ToValidUTF8(n, "\uFFFD"); got[strings.Repeat("0", i+1)] != want {
			t.Errorf("peer %d: name read back %q; want %q", i, got[strings.Repeat("0", i+1)], want)
		}
	}
	if len(got) != len(names) {
		t.Errorf("%d peers read back; want %d", len(got), len(names))
	}
}
