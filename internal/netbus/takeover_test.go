package netbus_test

import (
	"bytes"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// TestPlaintextTakeover: without keys, a heartbeat claiming a live node's
// id with a higher epoch from another address is refused and counted as a
// takeover attempt; the node's messages keep arriving. A real restart on
// another address is accepted once the old session has been silent for a
// heartbeat timeout.
func TestPlaintextTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		id := netbus.NodeID{0xa, 1}
		a := newNode(t, hub, "a", func(c *netbus.Config) { c.NodeID = id })
		b := newNode(t, hub, "b", nil)
		sendAll(t, a.bus, "c", 100)
		waitFor(t, time.Second, "100", func() bool { return b.sink.count() == 100 })
		attacker := memnet.Link{From: netip.MustParseAddrPort("10.0.9.9:4454"), To: b.addr}
		ep := a.bus.Stats().Epoch
		for i := range 10 {
			hub.Inject(attacker, netbus.Forge(netbus.KindHeartbeat, id, ep+1+uint64(i), 1, 0, nil))
			time.Sleep(20 * time.Millisecond)
		}
		for i := 100; i < 200; i++ {
			if err := a.bus.Send("c", msg(i)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, time.Second, "200", func() bool { return b.sink.count() == 200 })
		checkInOrder(t, b.sink.snapshot(), id, 200)
		st := b.bus.Stats()
		if st.Rejected[netbus.ReasonTakeover] != 10 {
			t.Errorf("rejected %v, want 10 takeover", st.Rejected)
		}
		if ps := peerStats(t, b.bus, id); ps.Restarts != 0 || ps.Epoch != ep {
			t.Errorf("peer restarted: %+v", ps)
		}
		// A real restart, on another address: accepted after the silence.
		a.bus.Close()
		a2 := newNode(t, hub, "a", func(c *netbus.Config) { c.NodeID = id })
		time.Sleep(time.Second)
		sendAll(t, a2.bus, "c", 10)
		waitFor(t, time.Second, "the restarted node's 10", func() bool { return b.sink.count() == 210 })
		if ps := peerStats(t, b.bus, id); ps.Restarts != 1 || ps.Epoch != a2.bus.Stats().Epoch {
			t.Errorf("restart not taken: %+v", ps)
		}
	})
}

// TestSealedIdentity: with keys, node id and epoch are in the associated
// data (and the nonce): a sealed datagram with either changed does not
// open.
func TestSealedIdentity(t *testing.T) {
	key := netbus.Key{ID: 1, Secret: bytes.Repeat([]byte{3}, 32)}
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		b := newNode(t, hub, "b", func(c *netbus.Config) { c.Keys = []netbus.Key{key} })
		attacker := memnet.Link{From: netip.MustParseAddrPort("10.0.9.9:4454"), To: b.addr}
		d := netbus.Forge(netbus.KindHeartbeat, netbus.NodeID{1}, 1000, 1, 0, &key)
		for _, off := range []int{10, 17, 18, 25} { // node id, epoch
			f := append([]byte(nil), d...)
			f[off] ^= 1
			hub.Inject(attacker, f)
		}
		time.Sleep(10 * time.Millisecond)
		st := b.bus.Stats()
		if st.Rejected[netbus.ReasonAuth] != 4 || len(st.Peers) != 0 {
			t.Errorf("rejected %v, %d peers; want 4 auth, none", st.Rejected, len(st.Peers))
		}
	})
}

// TestPlaintextTakeoverDuringStall: a receiver whose loop stalls for a
// second (here its DeliverFunc blocks; a starved process is the same)
// refuses a takeover attempt that arrived during the stall, before the
// live node's next heartbeat: the node was silent only while the
// receiver was not listening. Measured by the receiver's clock alone, the
// node looked silent for a second and lost its id to the attacker.
func TestPlaintextTakeoverDuringStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		id := netbus.NodeID{0xa, 2}
		a := newNode(t, hub, "a", func(c *netbus.Config) { c.NodeID = id })
		entered, release := make(chan struct{}), make(chan struct{})
		got := &sink{}
		b, err := netbus.New(netbus.Config{Transport: hub.Attach(), NodeName: "b"}, func(from netbus.Peer, ch string, frame []byte) {
			if got.count() == 0 {
				close(entered)
				<-release
			}
			got.deliver(from, ch, frame)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		time.Sleep(200 * time.Millisecond)
		if err := a.bus.Send("c", msg(0)); err != nil {
			t.Fatal(err)
		}
		<-entered // b's loop is stuck in its DeliverFunc
		attacker := memnet.Link{From: netip.MustParseAddrPort("10.0.9.9:4454"), To: b.LocalAddr()}
		hub.Inject(attacker, netbus.Forge(netbus.KindHeartbeat, id, a.bus.Stats().Epoch+1, 1, 0, nil))
		time.Sleep(time.Second) // a's heartbeats queue up behind the attempt
		close(release)
		time.Sleep(100 * time.Millisecond)
		sendAll(t, a.bus, "c", 10)
		waitFor(t, time.Second, "a's messages after the stall", func() bool { return got.count() == 11 })
		st := b.Stats()
		if st.Rejected[netbus.ReasonTakeover] != 1 {
			t.Errorf("rejected %v, want 1 takeover", st.Rejected)
		}
		if ps := peerStats(t, b, id); ps.Restarts != 0 || ps.Epoch != a.bus.Stats().Epoch {
			t.Errorf("a's id taken over during the stall: %+v", ps)
		}
	})
}
