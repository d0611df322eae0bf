package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// With the default outbuffer (8 MiB), the goroutine delivering runs from
// NATS waits for a recipient once its outbox passes bbWaitAt, not three
// quarters of outbuffer: a run reports the outbox nearly full past it, and
// waitRoom waits for a run while the outbox holds more (here for a writer
// that never takes it, until the recipient's credit is spent). A local
// sender, and a frame from NATS delivered alone (durable channels), still
// pause at three quarters only.
func TestBackboneRunsWaitPastBBWaitAt(t *testing.T) {
	s := lifecycleServer(t, func(c *config.Config) { c.OutBuffer = 8 << 20 })
	lim := s.limits.Load()
	if lim.outBuffer/4*3 <= bbWaitAt {
		t.Fatalf("outbuffer %d: three quarters of it is not past bbWaitAt %d", lim.outBuffer, bbWaitAt)
	}
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 1000)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	run := bytes.Repeat(frame, 64)
	r := newConn(s.channels["A"], newStuckSink())
	t.Cleanup(r.close)
	var wakes []*conn
	for {
		ok, _, nearlyFull, _ := r.queueRun(run, 64, lim, &wakes)
		if !ok {
			t.Fatalf("a run refused at %d bytes queued", r.queued())
		}
		if nearlyFull {
			break
		}
	}
	if q := r.queued(); q <= bbWaitAt || q > bbWaitAt+len(run) {
		t.Fatalf("a run found the outbox nearly full at %d bytes queued, want past %d by one run at most", q, bbWaitAt)
	}
	if r.deliver(&delivery{raw: frame, v: &v}) {
		t.Fatalf("a local sender was told to pause at %d bytes queued, under three quarters of %d", r.queued(), lim.outBuffer)
	}
	if r.deliver(&delivery{raw: frame, v: &v, patient: true}) {
		t.Fatalf("a frame from NATS alone was told to wait at %d bytes queued, under three quarters of %d", r.queued(), lim.outBuffer)
	}
	r.omu.Lock()
	r.bbCredit = pauseCredit{left: 2 * stallMax, filled: time.Now()}
	r.omu.Unlock()
	s.waitRoom(r, false)
	r.omu.Lock()
	left := r.bbCredit.left
	r.omu.Unlock()
	if left < 2*stallMax {
		t.Fatalf("waitRoom for a frame alone waited at %d bytes queued (credit %v left of %v), under three quarters of %d", r.queued(), left, 2*stallMax, lim.outBuffer)
	}

	r.omu.Lock()
	r.bbCredit = pauseCredit{left: 2 * stallMax, filled: time.Now()}
	r.omu.Unlock()
	s.waitRoom(r, true)
	r.omu.Lock()
	left, stalls := r.bbCredit.left, r.stalls
	r.omu.Unlock()
	if left > 0 || stalls == 0 {
		t.Fatalf("waitRoom left %v of the credit and counted %v of pauses in vain for an outbox of %d bytes its writer never takes", left, stalls, r.queued())
	}
}
