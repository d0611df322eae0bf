package netbus_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// TestLongGapRepaired: a receiver cut off while its sender sends 6,000
// datagrams gets every one once the link is back, though a NAK brings
// back at most 1,024 of them and NakRetries is 3: the retry limit counts
// the NAKs of a gap that bring nothing, not those of a gap being
// repaired in parts. (Counting every NAK, it gave up the gap after 3,072
// datagrams; between namespaces, a receiver back from a cut lost most of
// what its sender still held.)
func TestLongGapRepaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		mod := func(c *netbus.Config) { c.NakRetries = 3 }
		a := newNode(t, hub, "a", mod)
		b := newNode(t, hub, "b", mod)
		time.Sleep(200 * time.Millisecond)
		var cut atomic.Bool
		var dropped atomic.Uint64 // data datagrams the cut took from b
		cut.Store(true)
		hub.SetFilter(func(l memnet.Link, _ uint64, d []byte) memnet.Action {
			if cut.Load() && l.To == b.addr {
				if k, _, _, _ := netbus.PeekHeader(d); k == netbus.KindData {
					dropped.Add(1)
				}
				return memnet.Drop
			}
			return memnet.Pass
		})
		const n = 6000
		pad := strings.Repeat("x", 1200) // one message per datagram
		frame := func(i int) string { return fmt.Sprintf("%06d%s", i, pad) }
		for i := range n {
			for {
				err := a.bus.Send("c", []byte(frame(i)))
				if err == nil {
					break
				}
				if !errors.Is(err, netbus.ErrQueueFull) {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
		}
		// The cut lasts until a has written all n, counted as the filter
		// drops them: what b missed is what matters. (Sent.Datagrams
		// used to count them when packed, and a writes one window (2,048)
		// per heartbeat interval to a receiver that does not ack, so a cut
		// ended on it let through what was packed but not yet written,
		// which depended on how the real scheduler let the writer batch
		// the Sends: 1,904 in most runs, none in some, 3,952 when the
		// writer got no CPU until all was sent, only 2,048 NAKed back,
		// fewer than NakRetries NAKs of 1,024 would cover.)
		waitFor(t, 10*time.Second, "a to write all", func() bool { return dropped.Load() >= n })
		cut.Store(false)
		waitFor(t, 10*time.Second, "b to account for the 6,000", func() bool {
			ps, ok := findPeer(b.bus, a.bus.NodeID())
			return ok && ps.Delivered+ps.LostMessages >= n
		})
		ps := peerStats(t, b.bus, a.bus.NodeID())
		if ps.LostMessages != 0 || ps.Delivered != n {
			t.Fatalf("b delivered %d and lost %d of %d (recovered %d datagrams)", ps.Delivered, ps.LostMessages, n, ps.Recovered)
		}
		got := b.sink.snapshot()
		for i, r := range got {
			if r.frame != frame(i) {
				t.Fatalf("message %d is %.6s...", i, r.frame)
			}
		}
		// b got none of the n first time: each came back after a NAK.
		if ps.Recovered != n {
			t.Errorf("recovered %d datagrams of %d (the cut dropped %d): the gap was not repaired by NAKs", ps.Recovered, n, dropped.Load())
		}
	})
}
