//go:build linux

package nettest

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/netns"
)

// TestNetnsLoss: the receiving host drops 5% of its incoming datagrams at
// random (nftables): 100,000 messages still arrive complete and in order.
// Variants: the rule (datagrams to the group port: first
// transmissions) and every incoming UDP datagram (retransmissions,
// heartbeats, NAK answers and acks too), with small messages; and
// messages of 4 KiB (fragmented) with every datagram at risk. The agent
// emits as fast as Emit returns: flow control slows it instead of losing.
func TestNetnsLoss(t *testing.T) {
	netns.Skip(t)
	bin := buildServer(t)
	for _, tc := range []struct {
		name, match string
		pad         int // bytes of padding per message
	}{
		{"group-port", "udp dport 4454", 0},
		{"all-udp", "meta l4proto udp", 0},
		{"all-udp-4KiB", "meta l4proto udp", 4080},
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
			pad := strings.Repeat("x", tc.pad)
			for i := range n {
				var data any = i
				if tc.pad > 0 {
					data = []any{i, pad}
				}
				if err := e.Emit(ctx, "seq", data); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 60*time.Second, "100,000 messages", func() bool { return in.len() >= n })
			elapsed := time.Since(start)
			time.Sleep(200 * time.Millisecond) // duplicates would show now
			if tc.pad == 0 {
				checkSeq(t, "h2 A", in.get(), n)
			} else {
				checkPadded(t, "h2 A", in.get(), n, tc.pad)
			}
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

// checkPadded is checkSeq for messages [i, padding].
func checkPadded(t testing.TB, who string, msgs []*netcluster.Message, n, pad int) {
	t.Helper()
	if len(msgs) != n {
		t.Errorf("%s got %d messages, want %d", who, len(msgs), n)
	}
	for i, m := range msgs {
		var v []json.RawMessage
		var k int
		if err := m.Decode(&v); err != nil || len(v) != 2 || json.Unmarshal(v[0], &k) != nil || k != i || len(v[1]) != pad+2 {
			t.Errorf("%s: message %d is %.40s... (%v): lost or out of order", who, i, m.Data, err)
			return
		}
	}
}
