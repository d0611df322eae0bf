package netbus_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// forgedNode is the id of the i-th forged node.
func forgedNode(i int) netbus.NodeID {
	var id netbus.NodeID
	id[0] = 0xf0
	binary.BigEndian.PutUint32(id[4:], uint32(i))
	return id
}

// heapInUse is the live heap. Two collections: what sync.Pools hold
// (x/net's batch I/O pool keeps the iovecs of the last recvmmsg, which
// point into a UDP transport's read buffers, 1 MiB a batch with GRO)
// survives the first, and an earlier test's transport would count.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestForgedHeartbeats: 1,000 forged sessions, each starting at sequence
// 1 and then announcing 2^40 datagrams in a heartbeat, then a forged data datagram from each
// (proving the node, with a valid key when sealed) far ahead of it: the
// receiver's accounted memory stays under its MaxMemory bound, its heap
// grows less than 1.5 times the bound more than in the same run without
// the attack, refusals are counted, and a real sender's 20,000 messages
// sent meanwhile all arrive in order.
const forgedNodes = 1000

func TestForgedHeartbeats(t *testing.T) {
	key := netbus.Key{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}
	const bound = 4 << 20
	for _, sealed := range []bool{false, true} {
		name := "plaintext"
		if sealed {
			name = "sealed"
		}
		t.Run(name, func(t *testing.T) {
			var kp *netbus.Key
			if sealed {
				kp = &key
			}
			control, _ := forgedRun(t, kp, bound, 0)
			grown, st := forgedRun(t, kp, bound, forgedNodes)
			if st.Memory > st.MemoryLimit || st.MemoryLimit != bound {
				t.Errorf("accounted memory %d, limit %d (want %d)", st.Memory, st.MemoryLimit, bound)
			}
			if st.Rejected[netbus.ReasonMemory] == 0 {
				t.Errorf("no refusal counted for memory: %v", st.Rejected)
			}
			if grown-control > bound*3/2 {
				t.Errorf("heap grew %d bytes more under attack than without (%d), bound %d", grown-control, control, bound)
			}
			t.Logf("%s: %d peers, accounted %d bytes of %d, heap +%d bytes over the run without attack, rejected %v, evicted %d",
				name, len(st.Peers), st.Memory, st.MemoryLimit, grown-control, st.Rejected, st.Evicted)
		})
	}
}

// forgedRun sends 20,000 real messages while forging heartbeats and
// data datagrams from forged nodes, checks that every real message
// arrived in order, and returns how much the heap grew and the
// receiver's stats.
func forgedRun(t *testing.T, kp *netbus.Key, bound, forged int) (grown int64, st netbus.Stats) {
	synctest.Test(t, func(t *testing.T) {
		mod := func(c *netbus.Config) { c.MaxMemory = bound }
		if kp != nil {
			mod = func(c *netbus.Config) { c.MaxMemory, c.Keys = bound, []netbus.Key{*kp} }
		}
		hub := memnet.NewHub(memnet.HubOptions{})
		a := newNode(t, hub, "a", mod)
		b := newNode(t, hub, "b", mod)
		time.Sleep(200 * time.Millisecond)
		base := heapInUse()
		attacker := memnet.Link{From: netip.MustParseAddrPort("10.0.9.9:4454"), To: b.addr}
		epoch := uint64(time.Now().UnixNano())
		const n = 20000
		for i := range n {
			for a.bus.Send("c", msg(i)) != nil {
				time.Sleep(time.Millisecond)
			}
			if i < forged {
				// A session that starts at sequence 1, then announces 2^40.
				hub.Inject(attacker, netbus.Forge(netbus.KindHeartbeat, forgedNode(i), epoch, 1, 0, kp))
				hub.Inject(attacker, netbus.Forge(netbus.KindHeartbeat, forgedNode(i), epoch, 2, 1<<40, kp))
			} else if i < 2*forged {
				j := i - forged
				hub.Inject(attacker, netbus.Forge(netbus.KindData, forgedNode(j), epoch, 1<<40-1-uint64(j*7919)%16000, 0, kp))
			}
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		waitFor(t, 10*time.Second, "20,000 real messages", func() bool {
			return peerStats(t, b.bus, a.bus.NodeID()).Delivered >= n
		})
		checkInOrder(t, b.sink.snapshot(), a.bus.NodeID(), n)
		st = b.bus.Stats()
		grown = int64(heapInUse()) - int64(base)
		ps := peerStats(t, b.bus, a.bus.NodeID())
		if ps.LostMessages != 0 || ps.LostDatagrams != 0 {
			t.Errorf("real sender lost: %+v", ps)
		}
	})
	return grown, st
}
