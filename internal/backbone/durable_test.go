package backbone

import (
	"fmt"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// checkNumbered fails unless msgs are exactly the numbers from..to-1 in
// order.
func checkNumbered(t *testing.T, s *sink, from, to int) {
	t.Helper()
	got := s.msgs()
	if len(got) != to-from {
		t.Fatalf("got %d messages, want %d", len(got), to-from)
	}
	for i, m := range got {
		if string(m.Data) != fmt.Sprint(from+i) {
			t.Fatalf("message %d is %q, want %d: lost, duplicated or out of order", i, m.Data, from+i)
		}
	}
}

func TestDurableCatchUp(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, sa := open(t, natsCfg(ns.URL()), 1, dur)
	b, sb := open(t, natsCfg(ns.URL()), 2, dur)
	waitConnected(t, a)
	waitConnected(t, b)
	a.SetInterest("D", []string{".*"}, false)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumers", 10*time.Second, func() bool {
		return len(a.Stats().Durable) == 1 && len(b.Stats().Durable) == 1
	})
	for i := range 100 {
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	sb.waitLen(t, 100, 10*time.Second)
	checkNumbered(t, sb, 0, 100)

	// b goes away; what a sends meanwhile waits in the stream.
	b.Close()
	for i := 100; i < 150; i++ {
		a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i))))
	}
	waitFor(t, "stored", 10*time.Second, func() bool { return a.Stats().MsgsOut == 150 })
	_, sb2 := open(t, natsCfg(ns.URL()), 3, dur)       // another server, never interested
	b3, sb3 := openNamed(t, ns.URL(), 4, "node2", dur) // a new run of node2: same name, new id
	b3.SetInterest("D", []string{"e"}, false)
	sb3.waitLen(t, 50, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	checkNumbered(t, sb3, 100, 150)
	if sb2.len() != 0 {
		t.Errorf("a server with no interest consumed %d messages", sb2.len())
	}
	// a never gets its own messages back, and a restarted a does not either.
	time.Sleep(100 * time.Millisecond)
	if sa.len() != 0 {
		t.Errorf("a received %d of its own messages", sa.len())
	}
	a.Close()
	a2, sa2 := openNamed(t, ns.URL(), 5, "node1", dur)
	a2.SetInterest("D", []string{".*"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(a2.Stats().Durable) == 1 })
	time.Sleep(300 * time.Millisecond)
	if sa2.len() != 0 {
		t.Errorf("restarted a received %d of its own earlier messages", sa2.len())
	}
}

// openNamed is open with a node name of the caller's choice.
func openNamed(t *testing.T, url string, id byte, name string, durable map[string]config.Durable) (*Backbone, *sink) {
	t.Helper()
	s := newSink()
	b, err := New(Config{NATS: natsCfg(url), NodeID: NodeID{id}, NodeName: name, Durable: durable}, s.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, s
}

// A replay starts after what the server queued for the stream is stored:
// messages sent just before it are in it (a listener registered before
// the replay misses none of them).
func TestReplayAfterStored(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := open(t, natsCfg(ns.URL()), 1, dur)
	waitConnected(t, a)
	waitFor(t, "the stream", 10*time.Second, func() bool {
		_, err := a.Replay(t.Context(), "D", 1, time.Time{}, func([]byte) bool { return true })
		return err == nil
	})
	for round := range 5 {
		for i := range 100 {
			if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(round*100+i)))); err != nil {
				t.Fatal(err)
			}
		}
		got, err := a.Replay(t.Context(), "D", 1, time.Time{}, func([]byte) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("round %d: replayed %d messages, want the last one", round, len(got))
		}
		if m := parseFrame(t, got[0].Frame); string(m.Data) != fmt.Sprint(round*100+99) {
			t.Fatalf("round %d: the last stored is %q, want %d: the replay began before it was stored", round, m.Data, round*100+99)
		}
	}
}

// parseFrame decodes a whole Msg frame.
func parseFrame(t *testing.T, frame []byte) wire.Msg {
	t.Helper()
	v, err := wire.ParseMsg(frame[wire.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	return v.Msg()
}

// A server's new durable consumer starts from the server's start, not
// from its creation: what another server stores while this one is still
// connecting and setting up reaches it.
func TestDurableNewConsumerFromStart(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := open(t, natsCfg(ns.URL()), 1, dur)
	waitConnected(t, a)
	waitFor(t, "the stream", 10*time.Second, func() bool {
		_, err := a.Replay(t.Context(), "D", 1, time.Time{}, func([]byte) bool { return true })
		return err == nil
	})
	b, sb := open(t, natsCfg(ns.URL()), 2, dur)
	b.SetInterest("D", []string{"e"}, false)
	for i := range 50 {
		if err := a.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	sb.waitLen(t, 50, 10*time.Second)
	checkNumbered(t, sb, 0, 50)
}
