package netbus_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
)

// freePort finds a free UDP port on 127.0.0.1.
func freePort(t *testing.T) int { return freePortTB(t) }

func freePortTB(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func waitReal(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUDPPeers: two buses in unicast peers mode, 127.0.0.1 only.
func TestUDPPeers(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)}
	keys := []netbus.Key{{ID: 1, Secret: make([]byte, 32)}}
	mk := func(port int, name string) (*netbus.Bus, *sink) {
		s := &sink{}
		b, err := netbus.New(netbus.Config{Port: port, Peers: peers, NodeName: name, Keys: keys}, s.deliver)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b, s
	}
	a, _ := mk(pa, "a")
	b, sb := mk(pb, "b")
	const N = 5000
	sendAllReal(t, a, N)
	waitReal(t, "messages over udp", func() bool { return sb.count() == N })
	checkInOrder(t, sb.snapshot(), a.NodeID(), N)
	if ps := peerStats(t, b, a.NodeID()); ps.LostMessages != 0 || ps.Addr.String() != peers[0] {
		t.Errorf("stats %+v", ps)
	}
}

// TestUDPMulticastLoopback: two buses on one host share the group port on
// lo (SO_REUSEPORT), TTL 0, interface set explicitly.
func TestUDPMulticastLoopback(t *testing.T) {
	// Linux's lo lacks IFF_MULTICAST yet joins and loops multicast back
	// (checked by hand); if it does not here, the test skips.
	if _, err := net.InterfaceByName("lo"); err != nil {
		t.Skip("no lo")
	}
	port := freePort(t)
	mk := func(name string) (*netbus.Bus, *sink) {
		s := &sink{}
		b, err := netbus.New(netbus.Config{Group: "239.255.44.54", Port: port, Interface: "lo", TTL: -1, NodeName: name}, s.deliver)
		if err != nil {
			t.Skipf("multicast on lo unavailable: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return b, s
	}
	a, sa := mk("a")
	b, sb := mk("b")
	const N = 3000
	sendAllReal(t, a, N)
	sendAllReal(t, b, N)
	waitReal(t, "b hears a", func() bool { return sb.count() == N })
	waitReal(t, "a hears b", func() bool { return sa.count() == N })
	checkInOrder(t, sb.snapshot(), a.NodeID(), N)
	checkInOrder(t, sa.snapshot(), b.NodeID(), N)
	if a.Stats().Echoes == 0 {
		t.Error("no echoes: multicast loopback off?")
	}
}

func sendAllReal(t *testing.T, b *netbus.Bus, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for b.Send("c", msg(i)) != nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// A destination that fails (here port 0, refused by the kernel before
// anything is sent) does not stop the datagram reaching the other peers,
// and the failure is reported. 127.0.0.1 only.
func TestUDPWriteSkipsFailingPeer(t *testing.T) {
	recv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	tr, err := netbus.ListenUDP(netbus.UDPConfig{
		Port:  freePort(t),
		Peers: []string{"127.0.0.1:0", recv.LocalAddr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	err = tr.WriteBatch([]netbus.Packet{{Data: []byte("hello")}})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:0") {
		t.Errorf("WriteBatch: %v, want the failing destination named", err)
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := recv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("healthy peer got %q, %v", buf[:n], err)
	}
}
