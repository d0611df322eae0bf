package backbone

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// A handler that outlasts the consumer's stop (5 s, waiting for a slow
// recipient) finishes before the next run's first one starts, and what it
// delivered, brought again by JetStream after ackWait, is dropped as a
// duplicate. Each run used to have its own lock and receiver: the new
// run delivered beside the old handler, and delivered its message again.
func TestDurableSlowHandlerOutlastsStop(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := open(t, natsCfg(ns.URL()), 1, dur)
	s := newSink()
	var inside, overlaps atomic.Int32
	var blocked atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "nodeb", Durable: dur},
		func(node NodeID, frames []byte, st Stream) int {
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inside.Add(-1)
			if blocked.CompareAndSwap(false, true) {
				<-release // a recipient that takes its time
			}
			return s.deliver(node, frames, st)
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	t.Cleanup(unblock)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })

	send := func(i int) {
		t.Helper()
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "stored", 10*time.Second, func() bool { return a.Stats().MsgsOut == uint64(i+1) })
	}
	send(0)
	waitFor(t, "the handler blocked", 10*time.Second, blocked.Load)
	b.SetInterest("D", nil, false)
	waitFor(t, "the consumer stopped (given up on the handler)", 10*time.Second, func() bool { return len(b.Stats().Durable) == 0 })
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "the consumer started again", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	for i := 1; i < 4; i++ {
		send(i)
	}
	time.Sleep(time.Second) // the new run takes message 0 again (its ack wait is over), and the rest
	unblock()
	deadline := time.Now().Add(3 * gapWait)
	for s.len() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d deliveries of the channel ran beside another", n)
	}
	checkNumbered(t, s, 0, 4)
}
