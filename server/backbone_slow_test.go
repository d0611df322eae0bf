package server

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// A listener that reads slowly but steadily (its writer makes progress
// far more often than once a second) does not pace the one goroutine that
// delivers what NATS brings: a healthy listener of another channel on the
// same server gets every message while the slow one has read only a part
// of its own, nothing is lost between NATS and the server, and what the
// slow one could not take is dropped and counted.
func TestBackboneSlowListenerDoesNotPaceOthers(t *testing.T) {
	t.Parallel()
	nc := natstest.RunCluster(t, 1, natstest.Options{NoJetStream: true})
	chans := `"outbuffer": 65536, "channels": {"A": {"propagatetonet": true}, "B": {"propagatetonet": true}}`
	h1 := ntStart(t, bbConfig(t, []string{nc.URL(0)}, `{"nodename": "host1", `+chans+`}`))
	h2 := ntStart(t, bbConfig(t, []string{nc.URL(0)}, `{"nodename": "host2", `+chans+`}`))
	bbConnected(t, h1, h2)

	slow := ctlDialRaw(t, h2.dir, "A", "slow")
	slow.write(wire.AppendListen(nil, wire.TypeListen, "x"))
	slow.sync(1)
	_, healthy := ntListen(t, h2, "B", "x")
	bbSubjects(t, h2, "netcluster.default.A.x", "netcluster.default.B.x")

	// The slow listener reads a message every 2 ms until the test ends.
	var slowRead atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			slow.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			f, err := slow.rd.Next()
			if err != nil {
				if strings.Contains(err.Error(), "timeout") {
					continue
				}
				return
			}
			if f.Type == wire.TypeMsg {
				slowRead.Add(1)
			}
		}
	}()
	t.Cleanup(func() { close(stop); slow.nc.Close(); <-done })

	ea := ctlAgent(t, h1.dir, "A")
	eb := ctlAgent(t, h1.dir, "B")
	ctx := ctlCtx(t)
	payload := strings.Repeat("p", 1000)
	const n = 2000
	for range n {
		if err := ea.Emit(ctx, "x", payload); err != nil {
			t.Fatal(err)
		}
		if err := eb.Emit(ctx, "x", payload); err != nil {
			t.Fatal(err)
		}
	}
	var readThen int64
	bbWait(t, "the healthy listener gets every message", 60*time.Second, func() bool {
		readThen = slowRead.Load()
		return len(healthy.get()) >= n
	})
	// Without a bound on the pauses, the healthy listener's messages come
	// at the slow one's pace: it would have read nearly all of its own.
	if readThen > n/2 {
		t.Errorf("the slow listener had read %d of %d messages when the healthy one had all %d: it paced the others", readThen, n, n)
	}
	if st := h2.srv.Stats().Backbone; st.Lost != 0 {
		t.Errorf("the backbone lost %d messages from NATS", st.Lost)
	}
	if got := len(healthy.get()); got != n {
		t.Errorf("the healthy listener got %d messages, want %d", got, n)
	}
	ci, _ := h2.srv.Channel("A")
	if ci.Dropped == 0 {
		t.Errorf("nothing counted as dropped for the slow listener on A (%d read)", slowRead.Load())
	}
	ci, _ = h2.srv.Channel("B")
	if ci.Dropped != 0 {
		t.Errorf("%d dropped on B", ci.Dropped)
	}
}
