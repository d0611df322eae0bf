package backbone

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// BenchmarkSend: the publishing server's work per message (S9's host 1):
// Send, batching and publication, to a NATS server from which a second
// backbone receives them (ns/op is per message sent; the receiving side's
// rate is reported as recv/s).
func BenchmarkSend(b *testing.B) {
	ns := natstest.Run(b, natstest.Options{NoJetStream: true})
	a, _ := open(b, natsCfg(ns.URL()), 1, nil)
	var got atomic.Int64
	r, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "node2"}, func(_ NodeID, frames []byte, _ Stream) int {
		n := len(frames)
		for len(frames) > 0 {
			k, _ := wire.FrameLen(frames)
			frames = frames[k:]
			got.Add(1)
		}
		return n
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	waitConnected(b, a)
	waitConnected(b, r)
	r.SetInterest("A", []string{"ev"}, false)
	waitFor(b, "subscription", 5*time.Second, func() bool { return len(r.Subjects()) == 1 })
	f := frame("A", "ag1", "ev", make([]byte, 128))
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	start := time.Now()
	sent := 0
	for b.Loop() {
		for a.Send("A", "ev", f) != nil {
			time.Sleep(100 * time.Microsecond) // the buffer is full: NATS is behind
		}
		sent++
	}
	b.StopTimer()
	waitFor(b, "the messages", 30*time.Second, func() bool { return got.Load() >= int64(sent) })
	b.ReportMetric(float64(got.Load())/time.Since(start).Seconds(), "recv/s")
}
