package netbus_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// TestDeliveredCountsHandedMessages: PeerStats.Delivered counts a message
// once the DeliverFunc has returned from it, not when the stream queued
// it. Counted at queueing, a caller that waited for Delivered and then
// read what its DeliverFunc had stored could miss the batch still being
// handed over: TestForgedHeartbeats/plaintext once saw 19,932 of 20,000
// messages that way, none of them lost.
func TestDeliveredCountsHandedMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		a := newNode(t, hub, "a", nil)
		entered, release := make(chan struct{}), make(chan struct{})
		got := &sink{}
		calls := 0
		b, err := netbus.New(netbus.Config{Transport: hub.Attach(), NodeName: "b"}, func(from netbus.Peer, ch string, frame []byte) {
			calls++
			if calls == 2 {
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
		for i := range 3 {
			if err := a.bus.Send("c", msg(i)); err != nil {
				t.Fatal(err)
			}
		}
		<-entered // the second message is being handed over
		synctest.Wait()
		if ps := peerStats(t, b, a.bus.NodeID()); ps.Delivered != 1 || got.count() != 1 {
			t.Errorf("while the second message is in the DeliverFunc: Delivered %d, DeliverFunc returned from %d; want 1 and 1", ps.Delivered, got.count())
		}
		close(release)
		waitFor(t, time.Second, "3 delivered", func() bool { return peerStats(t, b, a.bus.NodeID()).Delivered == 3 })
		checkInOrder(t, got.snapshot(), a.bus.NodeID(), 3)
	})
}
