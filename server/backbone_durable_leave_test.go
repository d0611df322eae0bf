package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
)

// TestBackboneDurableListenerLeaves: once host 2's only listener on a
// durable channel has left, what is stored waits in JetStream for the
// next one. The consumer used to run on from the first listener, and
// delivered and acknowledged those messages to no one: an agent that
// came back got 0 of 50, where one that had never listened got all.
func TestBackboneDurableListenerLeaves(t *testing.T) {
	t.Parallel()
	const n = 50
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("l1")))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("l2")))
	bbConnected(t, h1, h2)
	a, _ := ntListen(t, h2, "D", "n")
	ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })
	if err := a.Close(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "host 2 no longer consuming, its listener gone", func() bool {
		return len(h2.srv.Stats().Backbone.Durable) == 0
	})

	emitNumbered(t, ctlAgent(t, h1.dir, "D"), "n", n, func(int) {})
	bbWait(t, "the messages stored", 30*time.Second, func() bool {
		return h1.srv.Stats().Backbone.MsgsOut >= n
	})
	// Were host 2 to consume with no listener, it would do it now.
	for end := time.Now().Add(time.Second); time.Now().Before(end) && h2.srv.Stats().Backbone.Routed < n; {
		time.Sleep(10 * time.Millisecond)
	}

	_, in := ntListen(t, h2, "D", "n")
	bbWait(t, "the messages stored while no one listened", 30*time.Second, func() bool {
		return len(in.get()) >= n
	})
	time.Sleep(100 * time.Millisecond) // a duplicate would come now
	checkExactlyInOrder(t, "stored while no one listened", numbers(t, in), n)
}
