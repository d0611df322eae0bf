package backbone

import (
	"runtime"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// Messages of two subjects interleaved each start a batch: the room the
// queue's batches hold follows what is queued, not batchLimit per batch
// (89bf5d2 made each new batch with room for 256 KiB: 50 MiB held for
// 26 KB queued, out of reach of the queue's byte bound).
func TestQueueMemoryFollowsQueued(t *testing.T) {
	b := &Backbone{subj: newSubjects("netcluster", "default"), cfg: Config{NATS: natsCfg(), MaxMessage: 16 << 20}}
	b.pub.init(b)
	copy(b.nodeHex[:], "0000000000000007")
	b.maxPayload.Store(1 << 20) // as a NATS server's INFO says: batchLimit 256 KiB
	f := frame("A", "ag1", "ev", make([]byte, 100))
	subjs := []string{b.subj.event("A", "ev"), b.subj.event("A", "ew")}
	p := &b.pub
	p.mu.Lock()
	const n = 200
	for i := range n {
		b.queueLocked(subjs[i%2], f, false, len(f))
	}
	held := 0
	for _, bt := range p.queue {
		held += cap(bt.frames)
	}
	queued, batches := p.queued, len(p.queue)
	p.mu.Unlock()
	if held > 4*queued+b.batchLimit() {
		t.Fatalf("the queue holds %d bytes of batches (%.1f MiB) for %d bytes queued (%d batches)", held, float64(held)/(1<<20), queued, batches)
	}
}

// One agent's two events interleaved through SendMsg and a NATS server:
// what is allocated per message stays near the message's size, and what
// the idle publisher keeps in spare batches stays small.
func TestInterleavedSendAllocatesLittle(t *testing.T) {
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	waitConnected(t, a)
	payload := frame("A", "ag1", "ev", make([]byte, 100))[wire.HeaderLen:]
	const n = 20000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		ev := "ev"
		if i%2 == 1 {
			ev = "ew"
		}
		a.SendMsg("A", ev, payload)
	}
	waitFor(t, "all published", 20*time.Second, func() bool { st := a.Stats(); return st.MsgsOut+st.Dropped >= n })
	runtime.ReadMemStats(&after)
	a.pub.mu.Lock()
	spareCap := 0
	for _, bt := range a.pub.spare {
		spareCap += cap(bt.frames)
	}
	a.pub.mu.Unlock()
	if per := float64(after.TotalAlloc-before.TotalAlloc) / n; per > 1024 {
		t.Fatalf("%.0f bytes allocated per message of %d bytes", per, len(payload))
	}
	if spareCap > 4<<20 {
		t.Fatalf("idle: spare batches hold %.1f MiB", float64(spareCap)/(1<<20))
	}
}
