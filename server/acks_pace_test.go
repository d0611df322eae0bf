package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// SeqMsgs routed and held in the sender's run for the backbone are
// acknowledged before the reader hands the run over, which can pause it
// for as long as NATS is crowded (pace: up to bbWaitBudget, 1 s): a run
// is acknowledged as soon as it is routed (bbRun). Here the hand-over is
// held by the test's hook, standing for such a pause. Since the reader
// published its acknowledgement positions once per read (flushIn), the
// run at the end of the read buffer was handed over before the next read
// published them: no Ack came until the hand-over ended.
func TestAckNotHeldByBackboneHandOver(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)

	bb := h.srv.bb.Load()
	release, held := make(chan struct{}), make(chan struct{}, 1)
	hook := func() {
		select {
		case held <- struct{}{}:
			select { // the first hand-over: held until the test has looked
			case <-release:
			case <-time.After(10 * time.Second):
			}
		default:
		}
	}
	bb.flushHook.Store(&hook)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		bb.flushHook.Store(nil)
	})

	snd := qDialRaw(t, h.dir, "A", "s", wire.VersionAcks)
	var b []byte
	for n := uint64(1); n <= 3; n++ {
		b = wire.AppendSeqMsg(b, 1, n, &wire.Msg{Channel: "A", Agent: "s", Event: "x", Data: []byte("d")})
	}
	snd.write(b)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender's run was never handed over")
	}
	snd.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	f, err := snd.rd.Next()
	if err != nil {
		t.Fatalf("no Ack within 2 s while the routed run was being handed to the backbone: %v", err)
	}
	if n, _ := wire.ParseU64(f.Payload); f.Type != wire.TypeAck || n != 3 {
		t.Fatalf("got %s %d; want Ack 3", wire.TypeName(f.Type), n)
	}
	released = true
	close(release)
	ntWait(t, "the run handed over", func() bool { return h.srv.Stats().Backbone.MsgsOut == 3 })
}
