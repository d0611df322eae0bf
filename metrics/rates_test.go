package metrics_test

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/testutil/testserver"
)

// The rates the server computes are gauges too: messages emitted show in
// the per-second gauge of the sample that saw them.
func TestMetricsRates(t *testing.T) {
	t.Parallel()
	srv, dir := startServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}}}`))
	addr := serve(t, srv)
	a := agent(t, dir, "A")
	for range 10 {
		if err := a.EmitRaw(testCtx(t), "tick", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	a.Flush(testCtx(t))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mf := scrape(t, addr)
		if mf["netcluster_messages_received_per_second"] != nil && value(t, mf, "netcluster_messages_received_per_second", "A") > 0 {
			if v := value(t, mf, "netcluster_received_bytes_per_second", "A"); v <= 0 {
				t.Errorf("bytes per second %v with messages per second above 0", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("netcluster_messages_received_per_second{channel=A} never above 0 after 10 messages")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
