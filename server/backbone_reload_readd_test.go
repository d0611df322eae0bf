package server

import (
	"strconv"
	"testing"
	"time"
)

// TestBackboneReloadReadded reloads the publishing host without its
// backbone (connecttonet off) and then with it again: the Backbone opened
// by the second reload has the same node id as the one the first closed,
// so it must go on from its numbers, as a reopened one does (TakeSends).
// It used to start them again (epoch 1, each durable channel from 1):
// host 2 dropped the next 20 as duplicates, on a durable channel and on a
// plain one alike.
func TestBackboneReloadReadded(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{true, false} {
		name := "plain"
		if durable {
			name = "durable"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reloadReadded(t, durable)
		})
	}
}

func reloadReadded(t *testing.T, durable bool) {
	const n = 40
	ns, src, h1, h2, in := reloadHosts(t, durable, "ra")
	em := ctlAgent(t, h1.dir, "D")
	emit := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := em.EmitRaw(ctlCtx(t), "n", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(0, n/2)
	bbWait(t, "the first half", 30*time.Second, func() bool { return len(in.get()) >= n/2 })
	reload := func(on bool) {
		t.Helper()
		c := bbConfig(t, []string{ns.URL()}, src("ra1"))
		c.ConnectToNet = on
		c.SocketDir = h1.dir
		if err := h1.srv.Reload(c); err != nil {
			t.Fatal(err)
		}
	}
	reload(false)
	if h1.srv.Stats().Backbone != nil {
		t.Fatal("host 1 still has a backbone")
	}
	reload(true)
	bbConnected(t, h1)
	emit(n/2, n)
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) && len(in.get()) < n {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would come now
	checkExactlyInOrder(t, "across the publisher's backbone removed and added again", numbers(t, in), n)
	if t.Failed() {
		t.Logf("host 1: %+v", h1.srv.Stats().Backbone)
		t.Logf("host 2: %+v", h2.srv.Stats().Backbone)
	}
}
