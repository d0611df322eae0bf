//go:build linux

package nettest

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netns"
)

// TestNetnsLoss: the receiving host drops 5% of its incoming datagrams at
// random (nftables): 100,000 messages still arrive complete and in order.
// Two variants: the rule (datagrams to the group port: first
// transmissions) and every incoming UDP datagram (retransmissions,
// heartbeats and NAK answers too).
func TestNetnsLoss(t *testing.T) {
	netns.Skip(t)
	bin := buildServer(t)
	for _, tc := range []struct{ name, match string }{
		{"group-port", "udp dport 4454"},
		{"all-udp", "meta l4proto udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nt := netns.New(t, 2)
			h1, h2 := nt.Hosts[0], nt.Hosts[1]
			if err := h2.DropInput(5, tc.match); err != nil {
				t.Fatal(err)
			}
			cfg := func(h *netns.Host) string {
				return `{` + netConfig(h, key1) + ` "channels": {"A": {"propagatetonet": true}}}`
			}
			s1 := startServer(t, bin, h1, cfg(h1))
			s2 := startServer(t, bin, h2, cfg(h2))
			in := s2.listen(t, "A", ".*")
			e := s1.agent(t, "A")
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			const n = 100000
			start := time.Now()
			for i := range n {
				if err := e.Emit(ctx, "seq", i); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 60*time.Second, "100,000 messages", func() bool { return in.len() >= n })
			elapsed := time.Since(start)
			time.Sleep(200 * time.Millisecond) // duplicates would show now
			checkSeq(t, "h2 A", in.get(), n)
			for _, m := range in.get() {
				if m.Node != s1.node {
					t.Fatalf("message from node %q, want %s", m.Node, s1.node)
				}
			}
			out, err := h2.Run("nft", "list", "table", "inet", "ncloss")
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no drop counter in:\n%s", out)
			}
			dropped, _ := strconv.Atoi(m[1])
			if dropped == 0 {
				t.Fatal("nftables dropped nothing: the test proves nothing")
			}
			if o := s2.out.String(); strings.Contains(o, "unrecoverable") {
				t.Errorf("h2 reports unrecoverable loss:\n%s", tail(o, 2000))
			}
			t.Logf("%s: %d messages in %v (%.0f msgs/s), %d datagrams dropped by nftables, none lost", tc.name, n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), dropped)
		})
	}
}
