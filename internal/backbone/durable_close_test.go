package backbone

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// holdingSink is a sink whose first delivery waits for release, and says
// so on blocked.
func holdingSink() (s *sink, deliver DeliverFunc, blocked, release chan struct{}) {
	s = newSink()
	blocked, release = make(chan struct{}), make(chan struct{})
	first := true
	return s, func(node NodeID, frames []byte, st Stream) int {
		if first { // never concurrent for one durable channel
			first = false
			close(blocked)
			<-release // a recipient that takes its time
		}
		return s.deliver(node, frames, st)
	}, blocked, release
}

// heldDelivery starts a Backbone a (node 1) and a Backbone b of server
// "nodeb" (node 2, closed at the end of the test) whose first delivery
// waits for release; b consumes D, a stores message 0 there, and it
// returns once b's handler holds it.
func heldDelivery(t *testing.T, ns *natstest.Server, dur map[string]config.Durable) (a, b *Backbone, s *sink, release chan struct{}) {
	t.Helper()
	a, _ = open(t, natsCfg(ns.URL()), 1, dur)
	s, deliver, blocked, release := holdingSink()
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "nodeb", Durable: dur}, deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	if err := a.Send("D", "e", frame("D", "x", "e", []byte("0"))); err != nil {
		t.Fatal(err)
	}
	<-blocked
	return a, b, s, release
}

// A handler that is delivering when its Backbone is closed (well within
// the 5 s bound) gets its acknowledgement to NATS: the next run of the
// same server does not deliver the message again. Close used to close
// the connection while the handler ran, its ack was lost, and the next
// run, after ackWait, delivered message 0 a second time.
func TestDurableCloseAcksLastHandler(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, b, s, release := heldDelivery(t, ns, dur)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	time.Sleep(300 * time.Millisecond) // Close is under way
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	checkNumbered(t, s, 0, 1)

	b2, s2 := openNamed(t, ns.URL(), 3, "nodeb", dur)
	b2.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b2.Stats().Durable) == 1 })
	for i := 1; i < 3; i++ {
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	s2.waitLen(t, 2, 10*time.Second)
	time.Sleep(ackWait + time.Second) // an unacknowledged 0 would come now
	checkNumbered(t, s2, 1, 3)
}

// StopConsuming returns once the handler has finished and its
// acknowledgement is with NATS, and leaves the channel publishing: a
// second Backbone of the same server then consumes what follows, and
// with TakeSequences drops what the first delivered, should JetStream
// bring it again (without: got 3 messages, want 2).
func TestDurableStopConsumingHandsOver(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, b, s, release := heldDelivery(t, ns, dur)
	stopped := make(chan struct{})
	go func() { b.StopConsuming(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("StopConsuming returned while a handler ran")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("StopConsuming did not return")
	}
	if n := len(b.Stats().Durable); n != 0 {
		t.Errorf("%d durable channels still consuming", n)
	}
	b.SetInterest("D", []string{"e"}, false) // no restart: it stopped for good
	b2, s2 := openNamed(t, ns.URL(), 3, "nodeb", dur)
	b2.TakeSequences(b)
	// Message 0 stored again, as a publisher's retry past the dedup
	// window would: b delivered it, so b2 drops it.
	republish(t, ns.URL(), StreamName(b.cfg.NATS.Prefix, b.cfg.NATS.Cluster, "D"), 1)
	b2.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b2.Stats().Durable) == 1 })
	for i := 1; i < 3; i++ {
		if err := b.Send("D", "e", frame("D", "y", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b's messages stored", 10*time.Second, func() bool { return b.Stats().MsgsOut == 2 })
	s2.waitLen(t, 2, 10*time.Second)
	time.Sleep(ackWait + time.Second) // an unacknowledged 0 would come now
	checkNumbered(t, s2, 1, 3)        // a's: b2 skips what b (its own server) stored
	checkNumbered(t, s, 0, 1)
}

// republish stores stream message seq again under a new message id.
func republish(t *testing.T, url, stream string, seq uint64) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(jetstream.MsgIDHeader, "again")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}); err != nil {
		t.Fatal(err)
	}
}
