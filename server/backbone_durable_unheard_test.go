package server

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/natstest"
)

// TestBackboneDurableLeaveMidBurst: host 2's only listener on a durable
// channel leaves while host 1 is storing a burst, and host 2 has yet to
// withdraw its interest (its interestLoop held by a hook, as a loaded one
// is late): its consumer runs on with no listener meanwhile. What it
// brings then must wait in JetStream for the next listener, which gets
// every message stored after the leave, in order, none twice. The
// consumer used to deliver them to no one and acknowledge them: the next
// listener got none of them.
func TestBackboneDurableLeaveMidBurst(t *testing.T) {
	t.Parallel()
	const n = 200
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("m1")))
	cfg2 := bbConfig(t, []string{ns.URL()}, cfg("m2"))
	h2 := ntStart(t, cfg2)
	bbConnected(t, h1, h2)
	a, first := ntListen(t, h2, "D", "n")
	ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })

	em := ctlAgent(t, h1.dir, "D")
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			if err := em.EmitRaw(ctlCtx(t), "n", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(0, n/2)
	bbWait(t, "the first half at the listener", 30*time.Second, func() bool { return len(first.get()) >= n/2 })
	checkExactlyInOrder(t, "before the leave", numbers(t, first), n/2)

	bb := h2.srv.bb.Load()
	release, held := make(chan struct{}), make(chan struct{}, 1)
	hook := func() {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	}
	bb.interestHook.Store(&hook)
	released := false
	releaseHook := func() {
		if !released {
			released = true
			bb.interestHook.Store(nil)
			close(release)
		}
	}
	t.Cleanup(releaseHook)

	if err := a.Close(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held: // the leave's pass waits: host 2 still consumes
	case <-time.After(10 * time.Second):
		t.Fatal("host 2's interestLoop did not run after the leave")
	}
	emit(n/2, n)
	bbWait(t, "the second half stored", 30*time.Second, func() bool { return h1.srv.Stats().Backbone.MsgsOut >= n })
	bbWait(t, "host 2's consumer to have handled the second half", 30*time.Second, func() bool {
		return consumerHandled(t, ns.URL(), cfg2, "D")
	})
	releaseHook()
	ntWait(t, "host 2 no longer consuming, its listener gone", func() bool {
		return len(h2.srv.Stats().Backbone.Durable) == 0
	})

	_, in := ntListen(t, h2, "D", "n")
	end := time.Now().Add(15 * time.Second)
	for time.Now().Before(end) && len(in.get()) < n/2 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would come now
	got := numbers(t, in)
	ok := len(got) == n/2
	for i, v := range got {
		ok = ok && v == n/2+i
	}
	if !ok {
		st := h2.srv.Stats().Backbone
		t.Fatalf("the next listener got %d of the %d stored after the leave (want %d..%d once each, in order): %v; host 2: routed %d, in %d, duplicates %d, lost %d",
			len(got), n/2, n/2, n-1, got, st.Routed, st.MsgsIn, st.Duplicates, st.Lost)
	}
}

// consumerHandled reports whether the durable consumer of channel on the
// server bus configures has been handed everything stored and has
// handled it: acknowledged it all, or sent each message it has not
// acknowledged back at least once.
func consumerHandled(t testing.TB, url string, bus *config.Config, channel string) bool {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	stream := backbone.StreamName(bus.NATS.Prefix, bus.NATS.Cluster, channel)
	c, err := js.Consumer(ctlCtx(t), stream, backbone.ConsumerName(bus.NodeName))
	if err != nil {
		return false
	}
	i := c.CachedInfo()
	return i.NumPending == 0 && (i.NumAckPending == 0 || i.NumRedelivered >= i.NumAckPending)
}
