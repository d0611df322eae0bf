package metrics_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/server"
)

// TestMetricsBackbone: with the NATS backbone on, the metrics carry its
// state and counters, queue groups included. Two servers on one embedded
// nats-server (127.0.0.1); a queue member on the second gets what the
// first emits, and the second's queue counter says how many NATS picked
// it for.
func TestMetricsBackbone(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	src := fmt.Sprintf(`{"connecttonet": true, "nats": {"urls": [%q]}, "channels": {"A": {"propagatetonet": true}}}`, ns.URL())
	n1, dir1 := startServer(t, testserver.ParseConfig(t, src))
	n2, dir2 := startServer(t, testserver.ParseConfig(t, src))
	for _, n := range []*server.Server{n1, n2} {
		testutil.Eventually(t, "backbone connected", func() bool {
			b := n.Stats().Backbone
			return b != nil && b.State == "connected"
		})
	}
	var got atomic.Int64
	worker := agent(t, dir2, "A")
	if _, err := worker.OnQueue("job", "workers", func(*netcluster.Message) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := worker.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	// Until the queue subscription has reached NATS, a job finds no
	// member there; emit until one arrives, then a few more.
	emitter := agent(t, dir1, "A")
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() == 0 && time.Now().Before(deadline) {
		if err := emitter.Emit(testCtx(t), "job", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Load() == 0 {
		t.Fatal("no job reached the queue member over NATS")
	}
	for range 5 {
		if err := emitter.Emit(testCtx(t), "job", 1); err != nil {
			t.Fatal(err)
		}
	}
	emitter.Flush(testCtx(t))
	testutil.Eventually(t, "the 5 further jobs", func() bool {
		return n2.Stats().Backbone.QueueIn == uint64(got.Load()) && got.Load() >= 6
	})

	mf := scrape(t, serve(t, n2))
	if v := single(t, mf, "netcluster_nats_queue_messages_received_total"); v != float64(got.Load()) {
		t.Errorf("queue messages received %v, the member got %d", v, got.Load())
	}
	if v := single(t, mf, "netcluster_nats_queue_messages_requeued_total"); v != 0 {
		t.Errorf("requeued %v, want 0", v)
	}
	f := mf["netcluster_nats_connected"]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge().GetValue() != 1 ||
		f.GetMetric()[0].GetLabel()[0].GetValue() != ns.URL() {
		t.Errorf("connected gauge %v, want 1 with url %s", f, ns.URL())
	}
	mf1 := scrape(t, serve(t, n1))
	if v := single(t, mf1, "netcluster_nats_messages_sent_total"); v < float64(got.Load()) {
		t.Errorf("first server published %v messages, the member got %d", v, got.Load())
	}
}
