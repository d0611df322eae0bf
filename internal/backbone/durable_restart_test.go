package backbone

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// A server's previous run left messages delivered and not acknowledged
// (it stopped with them in flight): JetStream redelivers them only after
// ackWait, and delivers the later ones at once. The new run holds the
// later ones until the old ones are back, so it delivers every message
// once and in order; it used to start its sequences from the first later
// one and drop the redelivered ones as duplicates.
func TestDurableRestartPendingFirst(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := open(t, natsCfg(ns.URL()), 1, dur)
	b, _ := openNamed(t, ns.URL(), 2, "nodeb", dur)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	b.Close()

	const n = 40
	for i := range n {
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
		// One envelope each, mostly: stored before the next is sent.
		waitFor(t, "stored", 10*time.Second, func() bool { return a.Stats().MsgsOut == uint64(i+1) })
	}

	// The previous run of nodeb took the first envelopes and stopped
	// before it acknowledged them.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), a.durables["D"].stream, ConsumerName("nodeb"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	if taken != 3 {
		t.Fatalf("took %d envelopes, want 3", taken)
	}

	b2, sb2 := openNamed(t, ns.URL(), 3, "nodeb", dur)
	b2.SetInterest("D", []string{"e"}, false)
	deadline := time.Now().Add(4 * gapWait)
	for sb2.len() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	checkNumbered(t, sb2, 0, n)
}
