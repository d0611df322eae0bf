package backbone

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// A reload's new Backbone of server a (same node id) takes the old one's
// durable sends: what the old one had queued behind its publication in
// flight, and what comes to the old one after the hand-over (a sender
// that read it just before), go out through the new one, numbered on from
// the old one's numbers, after the flight is stored. The other server's
// consumer gets 0..29 once each, in order. Without the hand-over the old
// one's Close dropped 1..9 (counted) and the new one numbered from 1, so
// b dropped its messages as duplicates.
func TestDurableTakeSends(t *testing.T) {
	t.Parallel()
	ns, dur, a, b, s := handoverPair(t)
	held, release := make(chan struct{}), make(chan struct{})
	first := true
	hook := func() {
		if first { // publishLoop's goroutine only
			first = false
			close(held)
			<-release
		}
	}
	a.durables["D"].storeHook.Store(&hook)
	sendNumbered(t, a, 0, 1)
	<-held // 0 in flight
	sendNumbered(t, a, 1, 10)

	a2, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{1}, NodeName: "nodea", Durable: dur}, newSink().deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	a2.TakeSends(a)
	sendNumbered(t, a, 10, 20) // to a2
	sendNumbered(t, a2, 20, 30)
	time.Sleep(100 * time.Millisecond) // a2 would store 1.. now, ahead of 0
	close(release)
	a.Close()
	s.waitLen(t, 30, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	checkNumbered(t, s, 0, 30)
	if st := a.Stats(); st.Dropped != 0 {
		t.Errorf("the old Backbone dropped %d", st.Dropped)
	}
	if st := b.Stats(); st.Duplicates != 0 || st.Lost != 0 {
		t.Errorf("b: duplicates %d, lost %d", st.Duplicates, st.Lost)
	}
}

// A hand-over with nothing queued: the new Backbone's waitStored (a
// replay's) returns once the old one's last publication ended, though
// its own publishLoop has had nothing to do since.
func TestDurableTakeSendsIdle(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := openNamed(t, ns.URL(), 1, "nodea", dur)
	waitConnected(t, a)
	if err := a.Send("D", "e", frame("D", "x", "e", []byte("0"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.durables["D"].waitStored(ctx); err != nil {
		t.Fatal(err)
	}
	a2, _ := openNamed(t, ns.URL(), 1, "nodea", dur)
	a2.TakeSends(a)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a2.durables["D"].waitStored(ctx); err != nil {
		t.Fatalf("waitStored after a hand-over of nothing: %v", err)
	}
}

// handoverPair opens server a's Backbone (node 1), which a test hands
// over, and server b's (node 2), whose consumer of durable channel D
// listens to event e into s.
func handoverPair(t *testing.T) (ns *natstest.Server, dur map[string]config.Durable, a, b *Backbone, s *sink) {
	t.Helper()
	ns = natstest.Run(t, natstest.Options{})
	dur = map[string]config.Durable{"D": *config.NewDurable()}
	a, _ = openNamed(t, ns.URL(), 1, "nodea", dur)
	b, s = openNamed(t, ns.URL(), 2, "nodeb", dur)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	return ns, dur, a, b, s
}

// sendNumbered sends events e numbered from..until-1 on D through to.
func sendNumbered(t *testing.T, to *Backbone, from, until int) {
	t.Helper()
	for i := from; i < until; i++ {
		if err := to.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
}
