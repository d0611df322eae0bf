package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
)

// A message an agent of this server emitted just before a WithReplay
// listener was registered, routed but not yet handed to the backbone (its
// reader's run, held here by a hook until the replay has begun), is
// replayed: the replay waits for the hand-over before it reads the stream.
// It used to be neither replayed (not yet stored) nor live (routed before
// the listener was registered): lost at the seam.
func TestReplayWaitsForRoutedRun(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"nodename": "rr1", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`))
	bbConnected(t, h)
	_, early := ntListen(t, h, "D", "n")
	ntWait(t, "consuming", func() bool { return len(h.srv.Stats().Backbone.Durable) == 1 })

	bb := h.srv.bb.Load()
	release, held := make(chan struct{}), make(chan struct{}, 1)
	hook := func() {
		select {
		case held <- struct{}{}:
			select { // the first run: held until the replay has begun
			case <-release:
			case <-time.After(10 * time.Second):
			}
		default:
		}
	}
	bb.flushHook.Store(&hook)
	t.Cleanup(func() { bb.flushHook.Store(nil) })

	em := ctlAgent(t, h.dir, "D")
	if err := em.EmitRaw(ctlCtx(t), "n", []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held: // routed (the early listener has it or will), not handed over
	case <-time.After(10 * time.Second):
		t.Fatal("the emitter's run was never handed over")
	}
	got := make(chan *netcluster.Message, 4)
	late := ctlAgent(t, h.dir, "D")
	if _, err := late.On("n", func(m *netcluster.Message) { got <- m }, netcluster.WithReplay(netcluster.Last(10))); err != nil {
		t.Fatal(err)
	}
	// The listener registered and its replay begun (a Flush would wait
	// for the replay): it waits for the run, or has read the stream.
	time.Sleep(300 * time.Millisecond)
	close(release)
	select {
	case m := <-got:
		if string(m.Data) != "x" || !m.Replayed {
			t.Fatalf("got %q (replayed %v); want x, replayed", m.Data, m.Replayed)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("x reached the WithReplay listener neither replayed nor live (early listener: %d)", len(early.get()))
	}
}
