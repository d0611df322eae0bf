package main

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
)

// TestPrintNetwork: stats show the network side only when the server has
// one, with the peers in a table.
func TestPrintNetwork(t *testing.T) {
	t.Parallel()
	st := &control.Stats{NodeID: "n2", Started: time.Now(), Totals: control.ChannelStats{Name: "*"}}
	var b bytes.Buffer
	if err := printStats(&b, st); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`network`).MatchString(b.String()) {
		t.Errorf("no network, yet:\n%s", b.String())
	}
	st.Network = &control.NetStats{
		Node: "n2", Name: "host2", Addr: "127.0.0.1:4454", Group: "239.255.1.1:4454", Sealed: true,
		Sent: 5, Received: 7, Routed: 6, Refused: 1,
		Rejected: map[string]uint64{"auth": 2, "replay": 1},
		Peers: []control.NetPeerStats{{Node: "n1", Name: "host1", Addr: "127.0.0.1:4455", LastSeen: time.Now(),
			NextSeq: 9, Delivered: 7, Recovered: 2, LostDatagrams: 1, LostMessages: 1}},
	}
	b.Reset()
	if err := printStats(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^network: node n2 \(host2\) at 127\.0\.0\.1:4454, 239\.255\.1\.1:4454, sealed$`,
		`(?m)^sent 5 \(not sent 0\), received 7 \(routed 6, unknown channel 0, refused 1, malformed 0\)$`,
		`(?m)^rejected datagrams: auth 2, replay 1$`,
		`(?m)^PEER +NAME +ADDR +LAST SEEN +NEXT SEQ +DELIVERED +RECOVERED +LOST DATAGRAMS +LOST MSGS +RESTARTS$`,
		`(?m)^n1 +host1 +127\.0\.0\.1:4455 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +9 +7 +2 +1 +1 +0$`,
	} {
		if !regexp.MustCompile(re).MatchString(b.String()) {
			t.Errorf("output does not match %s:\n%s", re, b.String())
		}
	}
}
