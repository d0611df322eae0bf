//go:build linux

package nettest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netns"
)

// TestNetnsHosts: three hosts, each an ncserver with agents, multicast on
// a bridge. Delivery and propagation rules across hosts, order per
// sender, a node with the wrong key, and key rotation while messages flow.
func TestNetnsHosts(t *testing.T) {
	netns.Skip(t)
	bin := buildServer(t)
	nt := netns.New(t, 4)
	h1, h2, h3, h4 := nt.Hosts[0], nt.Hosts[1], nt.Hosts[2], nt.Hosts[3]
	cfg1 := func(keys string) string {
		return `{` + netConfig(h1, keys) + `
		  "channels": {
		    "A": {"propagatetonet": true, "propagatetochannels": "B"},
		    "B": {},
		    "C": {"propagatetonet": true},
		  }}`
	}
	cfg2 := func(keys string) string {
		return `{` + netConfig(h2, keys) + `
		  "channels": {
		    "A": {"propagatetochannels": "B", "propagatetonet": true},
		    "B": {},
		    "C": {"acceptnet": false},
		  }}`
	}
	cfg3 := func(keys string) string {
		return `{` + netConfig(h3, keys) + ` "dumpnet": true,
		  "channels": {"A": {}, "B": {}}}`
	}
	s1 := startServer(t, bin, h1, cfg1(key1))
	s2 := startServer(t, bin, h2, cfg2(key1))
	s3 := startServer(t, bin, h3, cfg3(key1))
	if s1.node == s2.node || s2.node == s3.node || s1.node == s3.node {
		t.Fatalf("node ids not distinct: %s %s %s", s1.node, s2.node, s3.node)
	}

	b1 := s1.listen(t, "B", ".*")
	a2, b2, c2 := s2.listen(t, "A", ".*"), s2.listen(t, "B", ".*"), s2.listen(t, "C", ".*")
	a3, b3 := s3.listen(t, "A", ".*"), s3.listen(t, "B", ".*")
	e1 := s1.agent(t, "A")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("rules", func(t *testing.T) {
		if err := e1.Emit(ctx, "hello", "from h1"); err != nil {
			t.Fatal(err)
		}
		// h1: B by propagation. h2: A, and B by h2's propagation of A.
		// h3: A only (its A propagates nowhere).
		waitFor(t, 10*time.Second, "delivery", func() bool {
			return b1.len() == 1 && a2.len() == 1 && b2.len() == 1 && a3.len() == 1
		})
		for _, m := range []struct {
			who  string
			in   *inbox
			node string
		}{{"h1 B", b1, ""}, {"h2 A", a2, s1.node}, {"h2 B", b2, s1.node}, {"h3 A", a3, s1.node}} {
			got := m.in.get()[0]
			if got.Node != m.node || got.Channel != "A" || got.Event != "hello" || string(got.Data) != `"from h1"` {
				t.Errorf("%s: %+v; want node %q channel A event hello", m.who, got, m.node)
			}
		}
		// h2 emits on its A (propagatetonet): h1 has no listener on A but
		// propagates... no: network messages reach h1's A only, and B by
		// h1's rule.
		e2 := s2.agent(t, "A")
		if err := e2.Emit(ctx, "hello", "from h2"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "delivery from h2", func() bool { return b1.len() == 2 && a3.len() == 2 })
		if got := b1.get()[1]; got.Node != s2.node {
			t.Errorf("h1 B got %+v from h2; want node %s", got, s2.node)
		}
		// C: refused by h2 (acceptnet false), unknown on h3.
		ec := s1.agent(t, "C")
		if err := ec.Emit(ctx, "hello", "C"); err != nil {
			t.Fatal(err)
		}
		s2.waitLog(t, regexp.MustCompile(`network: messages dropped.*refused_acceptnet=1`))
		s3.waitLog(t, regexp.MustCompile(`network: messages dropped.*unknown_channel=1`))
		s3.waitLog(t, regexp.MustCompile(`net node=`+s1.node+` name="[^"]*" from=10\.99\.0\.1:\d+ channel=C event="hello" agent=\S+ size=3 dropped=unknown-channel`))
		if c2.len() != 0 || b3.len() != 0 {
			t.Errorf("h2 C got %d (acceptnet false), h3 B got %d (no propagation); want 0", c2.len(), b3.len())
		}
		if c := strings.Count(s3.out.String(), " net node="); c != 3 {
			t.Errorf("h3 dumpnet printed %d lines, want 3", c)
		}
	})

	t.Run("order", func(t *testing.T) {
		const n = 20000
		base2, base3 := a2.len(), a3.len()
		for i := range n {
			if err := e1.Emit(ctx, "seq", i); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "sequence", func() bool { return a2.len() == base2+n && a3.len() == base3+n })
		checkSeq(t, "h2 A", a2.get()[base2:], n)
		checkSeq(t, "h3 A", a3.get()[base3:], n)
	})

	t.Run("wrong key", func(t *testing.T) {
		s4 := startServer(t, bin, h4, `{`+netConfig(h4, keyBad)+` "channels": {"A": {"propagatetonet": true}}}`)
		a4 := s4.listen(t, "A", ".*")
		e4 := s4.agent(t, "A")
		for i := range 10 {
			if err := e1.Emit(ctx, "k", i); err != nil {
				t.Fatal(err)
			}
			if err := e4.Emit(ctx, "k4", i); err != nil {
				t.Fatal(err)
			}
		}
		// h4 refuses the others' datagrams, they refuse h4's: counted
		// and logged; nothing is delivered either way.
		s4.waitLog(t, regexp.MustCompile(`datagrams refused \(key mismatch.*auth=\d+`))
		s1.waitLog(t, regexp.MustCompile(`datagrams refused \(key mismatch.*auth=\d+`))
		waitFor(t, 10*time.Second, "h1 traffic at h2", func() bool { return len(lastEvents(a2, "k")) == 10 })
		time.Sleep(300 * time.Millisecond)
		if got := lastEvents(a4, "k"); len(got) != 0 {
			t.Errorf("h4 (wrong key) delivered %d messages from the network", len(got))
		}
		for _, in := range []*inbox{a2, a3, b1} {
			if got := lastEvents(in, "k4"); len(got) != 0 {
				t.Errorf("a message sealed with the wrong key was delivered: %v", got)
			}
		}
		s4.stop(t)
	})

	t.Run("key rotation", func(t *testing.T) {
		// Messages flow while keys rotate: [k1] → [k1,k2] → [k2,k1] → [k2],
		// each step applied on every node (SIGHUP) before the next.
		mark := [3]int{len(s1.out.String()), len(s2.out.String()), len(s3.out.String())}
		base2, base3 := a2.len(), a3.len()
		const n = 30000
		done := make(chan error, 1)
		go func() {
			for i := range n {
				if err := e1.Emit(ctx, "rot", i); err != nil {
					done <- err
					return
				}
				if i%100 == 0 {
					time.Sleep(time.Millisecond) // spread over the rotation
				}
			}
			done <- nil
		}()
		for _, keys := range []string{key1 + "," + key2, key2 + "," + key1, key2} {
			s1.reload(t, cfg1(keys))
			s2.reload(t, cfg2(keys))
			s3.reload(t, cfg3(keys))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "rotation traffic", func() bool { return a2.len() == base2+n && a3.len() == base3+n })
		checkSeq(t, "h2 A", a2.get()[base2:], n)
		checkSeq(t, "h3 A", a3.get()[base3:], n)
		for i, s := range []*server{s1, s2, s3} {
			if out := s.out.String()[mark[i]:]; strings.Contains(out, "refused") || strings.Contains(out, "unrecoverable") {
				t.Errorf("%s refused or lost datagrams during the rotation:\n%s", s.h.Name, tail(out, 2000))
			}
		}
		if c := strings.Count(s2.out.String()[mark[1]:], "network keys changed"); c != 3 {
			t.Errorf("h2 changed keys %d times, want 3 (in place, no rebind)", c)
		}
	})
}

// lastEvents returns the data of the messages with event ev.
func lastEvents(in *inbox, ev string) []string {
	var out []string
	for _, m := range in.get() {
		if m.Event == ev {
			out = append(out, string(m.Data))
		}
	}
	return out
}

// TestNetnsPeers: unicast peers mode, multicast off. Every host sends
// and receives; an nftables counter in each namespace shows that no
// multicast datagram was sent.
func TestNetnsPeers(t *testing.T) {
	netns.Skip(t)
	bin := buildServer(t)
	nt := netns.New(t, 3)
	var peers []string
	for _, h := range nt.Hosts {
		peers = append(peers, fmt.Sprintf("%q", h.Addr+":4454"))
		if err := h.NFT("table inet ncmc {\n\tchain output {\n\t\ttype filter hook output priority 0;\n\t\tip daddr 224.0.0.0/4 counter\n\t}\n}\n"); err != nil {
			t.Fatal(err)
		}
	}
	var srvs []*server
	var ins []*inbox
	for _, h := range nt.Hosts {
		s := startServer(t, bin, h, `{`+netConfig(h, key1)+` "peers": [`+strings.Join(peers, ",")+`],
		  "channels": {"A": {"propagatetonet": true}}}`)
		srvs = append(srvs, s)
		ins = append(ins, s.listen(t, "A", ".*"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 5000
	for i, s := range srvs {
		e := s.agent(t, "A")
		for j := range n {
			if err := e.Emit(ctx, fmt.Sprintf("from%d", i), j); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 30*time.Second, "peers traffic", func() bool {
		for _, in := range ins {
			if in.len() != 3*n { // n local, 2n from the network
				return false
			}
		}
		return true
	})
	for i, in := range ins {
		for j := range srvs {
			if j == i {
				for _, m := range in.get() {
					if m.Event == fmt.Sprintf("from%d", j) && m.Node != "" {
						t.Fatalf("host %d heard its own message back from the network: %+v", i, m)
					}
				}
				continue
			}
			var ms = in.get()
			var seq []int
			for _, m := range ms {
				if m.Event == fmt.Sprintf("from%d", j) {
					if m.Node != srvs[j].node {
						t.Fatalf("host %d: message from host %d names node %q, want %s", i, j, m.Node, srvs[j].node)
					}
					var v int
					m.Decode(&v)
					seq = append(seq, v)
				}
			}
			for k, v := range seq {
				if v != k {
					t.Fatalf("host %d from host %d: message %d is %d", i, j, k, v)
				}
			}
			if len(seq) != n {
				t.Errorf("host %d got %d from host %d, want %d", i, len(seq), j, n)
			}
		}
	}
	for _, h := range nt.Hosts {
		out, err := h.Run("nft", "list", "table", "inet", "ncmc")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "counter packets 0 bytes 0") {
			t.Errorf("%s sent multicast in peers mode:\n%s", h.Name, out)
		}
	}
}
