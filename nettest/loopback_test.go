//go:build linux

package nettest

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netns"
)

// counter counts the messages a Bus delivers, by sending node.
type counter struct {
	mu sync.Mutex
	n  map[netbus.NodeID]int
}

func (c *counter) deliver(p netbus.Peer, _ string, _ []byte) {
	c.mu.Lock()
	c.n[p.ID]++
	c.mu.Unlock()
}

func (c *counter) from(id netbus.NodeID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// TestNetnsNoLoopback: a node with Config.NoLoopback is heard by the other
// host and hears the node beside it (whose loopback is on), but neither it
// nor its neighbour receives its own group datagrams back.
func TestNetnsNoLoopback(t *testing.T) {
	netns.Skip(t)
	nt := netns.New(t, 2)
	type node struct {
		bus *netbus.Bus
		got *counter
	}
	open := func(h *netns.Host, name string, noLoop bool) node {
		n := node{got: &counter{n: map[netbus.NodeID]int{}}}
		err := h.Do(func() error {
			var err error
			n.bus, err = netbus.New(netbus.Config{Interface: "eth0", NodeName: name, NoLoopback: noLoop}, n.got.deliver)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.bus.Close() })
		return n
	}
	quiet := open(nt.Hosts[0], "quiet", true)
	loud := open(nt.Hosts[0], "loud", false)
	far := open(nt.Hosts[1], "far", false)
	waitFor(t, 5*time.Second, "far knows both", func() bool { return len(far.bus.Stats().Peers) == 2 })
	const N = 5000
	send := func(n node) {
		frame := make([]byte, 128)
		for i := 0; i < N; {
			if n.bus.Send("c", frame) == nil {
				i++
			} else {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	send(quiet)
	waitFor(t, 10*time.Second, "far hears quiet", func() bool { return far.got.from(quiet.bus.NodeID()) == N })
	// Sent after quiet's: by the time they are heard, quiet's would have
	// been, had they looped back.
	send(loud)
	waitFor(t, 10*time.Second, "quiet hears loud", func() bool { return quiet.got.from(loud.bus.NodeID()) == N })
	waitFor(t, 10*time.Second, "far hears loud", func() bool { return far.got.from(loud.bus.NodeID()) == N })
	if n := loud.got.from(quiet.bus.NodeID()); n != 0 {
		t.Errorf("loud, on quiet's host, got %d of quiet's messages", n)
	}
	for _, p := range loud.bus.Stats().Peers {
		// Loud knows quiet from its acks (unicast), but has no heartbeat
		// (which names it) nor data of it: those go to the group.
		if p.ID == quiet.bus.NodeID() && (p.Name != "" || p.Datagrams != 0) {
			t.Errorf("loud heard quiet's group datagrams (%+v): they looped back", p)
		}
	}
	if e := quiet.bus.Stats().Echoes; e != 0 {
		t.Errorf("quiet got %d echoes of its own datagrams", e)
	}
	if loud.bus.Stats().Echoes == 0 {
		t.Error("loud got no echoes: its loopback is off too?")
	}
}

// TestNetnsOffload: between two hosts (veth and a bridge), runs of
// datagrams go out with GSO to the group and to one address, arrive intact
// and in order, and the receiver reads some of them coalesced (GRO); GSO
// is still on after (a send the path refused would have turned it off).
func TestNetnsOffload(t *testing.T) {
	netns.Skip(t)
	nt := netns.New(t, 2)
	trs := make([]*netbus.UDPTransport, 2)
	for i, h := range nt.Hosts {
		err := h.Do(func() error {
			var err error
			trs[i], err = netbus.ListenUDP(netbus.UDPConfig{Interface: "eth0", TTL: 1})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { trs[i].Close() })
		if gso, gro := trs[i].Offload(); !gso || !gro {
			t.Fatalf("%s: offload gso %v, gro %v (Linux 5.0 has both)", h.Name, gso, gro)
		}
	}
	tx, rx := trs[0], trs[1]
	for _, dst := range []netip.AddrPort{{}, rx.LocalAddr()} {
		sent := make([]netbus.Packet, 300)
		for i := range sent {
			d := make([]byte, 1400)
			if i%100 == 99 {
				d = d[:700] // ends a run
			}
			binary.BigEndian.PutUint32(d, uint32(i))
			sent[i] = netbus.Packet{Data: d, Addr: dst}
		}
		before := rx.CoalescedReads()
		if err := tx.WriteBatch(sent); err != nil {
			t.Fatal(err)
		}
		ps := make([]netbus.Packet, 64)
		got := 0
		timer := time.AfterFunc(10*time.Second, func() { rx.Close() })
		for got < len(sent) {
			for i := range ps {
				ps[i].Data = make([]byte, 9000)
			}
			n, err := rx.ReadBatch(ps)
			if err != nil {
				t.Fatalf("to %v: after %d of %d: %v", dst, got, len(sent), err)
			}
			for _, p := range ps[:n] {
				if len(p.Data) < 4 || binary.BigEndian.Uint32(p.Data) != uint32(got) || len(p.Data) != len(sent[got].Data) {
					t.Fatalf("to %v: datagram %d: %d bytes, %x", dst, got, len(p.Data), p.Data[:min(4, len(p.Data))])
				}
				got++
			}
		}
		timer.Stop()
		if rx.CoalescedReads() == before {
			t.Errorf("to %v: no read was coalesced", dst)
		}
	}
	if gso, _ := tx.Offload(); !gso {
		t.Error("GSO turned itself off: the path refused it")
	}
}
