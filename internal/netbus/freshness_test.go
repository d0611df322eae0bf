package netbus_test

import (
	"bytes"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// TestReplayAfterReceiverRestart: 20,000 sealed messages recorded on
// their way to a receiver that then restarts, replayed to the new
// receiver after their sender has gone: none is delivered, and every
// replayed datagram is counted (heartbeats as stale-time, data as
// unfresh). The replay of a sender that is still alive needs real
// session epochs (wall clock), which synctest's clock does not give:
// nettest's TestNetnsChaosAttackSealed covers it with real processes.
func TestReplayAfterReceiverRestart(t *testing.T) {
	keys := []netbus.Key{{ID: 1, Secret: bytes.Repeat([]byte{5}, 32)}}
	withKeys := func(c *netbus.Config) { c.Keys = keys }
	synctest.Test(t, func(t *testing.T) {
		hub := memnet.NewHub(memnet.HubOptions{})
		a := newNode(t, hub, "a", withKeys)
		b1 := newNode(t, hub, "b", withKeys)
		recorded := record(hub, a, b1)
		const n = 20000
		sendAll(t, a.bus, "c", n)
		waitFor(t, 5*time.Second, "20,000", func() bool { return b1.sink.count() == n })
		hub.SetFilter(nil)
		b1.bus.Close()
		a.bus.Close()
		time.Sleep(3 * time.Second) // a's session is not one b2 starts together with
		b2 := newNode(t, hub, "b", withKeys)
		rec := recorded()
		link := memnet.Link{From: a.addr, To: b2.addr}
		for i, d := range rec {
			hub.Inject(link, d)
			if i%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		if got := b2.sink.count(); got != 0 {
			t.Fatalf("delivered %d replayed messages", got)
		}
		r := b2.bus.Stats().Rejected
		if refused := r[netbus.ReasonStaleTime] + r[netbus.ReasonUnfresh]; refused != uint64(len(rec)) {
			t.Errorf("%d datagrams replayed, refused %v", len(rec), r)
		}
		t.Logf("%d datagrams replayed, 0 delivered; rejected %v", len(rec), r)
	})
}

// TestDataBeforeFirstHeartbeat (real time: session epochs are wall
// clock): with keys, data of a sender running for longer than the start
// grace that reach a new receiver before the sender's first heartbeat
// does are refused (unfresh) at first, then recovered once a heartbeat
// passes: nothing the sender sent after the receiver started is lost.
func TestDataBeforeFirstHeartbeat(t *testing.T) {
	t.Parallel()
	keys := []netbus.Key{{ID: 1, Secret: bytes.Repeat([]byte{6}, 32)}}
	withKeys := func(c *netbus.Config) { c.Keys = keys }
	hub := memnet.NewHub(memnet.HubOptions{})
	a := newNode(t, hub, "a", withKeys)
	time.Sleep(2500 * time.Millisecond) // older than the start grace
	var mu sync.Mutex
	var until time.Time
	hub.SetFilter(func(l memnet.Link, _ uint64, d []byte) memnet.Action {
		mu.Lock()
		defer mu.Unlock()
		if k, _, _, _ := netbus.PeekHeader(d); l.From == a.addr && k == netbus.KindHeartbeat && time.Now().Before(until) {
			return memnet.Drop
		}
		return memnet.Pass
	})
	mu.Lock()
	until = time.Now().Add(300 * time.Millisecond)
	mu.Unlock()
	b := newNode(t, hub, "b", withKeys)
	for i := range 50 {
		if err := a.bus.Send("c", msg(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); b.sink.count() < 50; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of 50; stats %+v", b.sink.count(), b.bus.Stats())
		}
	}
	checkInOrder(t, b.sink.snapshot(), a.bus.NodeID(), 50)
	if r := b.bus.Stats().Rejected; r[netbus.ReasonUnfresh] == 0 {
		t.Errorf("nothing refused as unfresh (the test proves nothing): %v", r)
	}
}
