package backbone

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// Close does not wait out a durable consumer's setup that waits for an
// unreachable NATS (its requests time out only after publishTimeout):
// stopping the consumer ends the setup too. Close waited for the
// consumers before it cancelled the backbone's context (3700e14), and so
// for the whole timeout.
func TestDurableCloseDuringSetup(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{1}, NodeName: "node1", Durable: dur}, newSink().deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "the consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	ns.Shutdown()
	ns.WaitForShutdown()
	b.durables["D"].kick() // a setup now waits for NATS
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	b.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a setup waiting for NATS; want well under publishTimeout (%v)", took, publishTimeout)
	}
}
