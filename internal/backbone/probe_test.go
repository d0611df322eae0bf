package backbone

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
)

// TestProbe: a probe on a subject no other server subscribes to calls
// none (NATS's no-responders status), also when the prober itself
// subscribes to it (NoEcho); once another server subscribes, it answers
// the probe and none is not called; the probe is not delivered as a
// message and not counted as malformed.
func TestProbe(t *testing.T) {
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	b, sb := open(t, natsCfg(ns.URL()), 2, nil)
	waitConnected(t, a)
	waitConnected(t, b)
	a.SetInterest("A", []string{"price"}, false)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}

	probe := func() (none bool) {
		t.Helper()
		called := make(chan struct{})
		a.Probe("A", "price", func() { close(called) })
		select {
		case <-called:
			return true
		case <-time.After(time.Second):
			return false
		}
	}
	if !probe() {
		t.Fatal("probe with no other subscriber: none not called")
	}
	b.SetInterest("A", []string{"price"}, false)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if probe() {
		t.Fatal("probe with a subscriber: none called")
	}
	if n, st := sb.len(), b.Stats(); n != 0 || st.Malformed != 0 || st.MsgsIn != 0 {
		t.Fatalf("the subscriber got %d messages, stats %+v", n, st)
	}
}

// TestProbeHeldWhileReconnecting: a probe made while NATS is unreachable
// is held by nats.go and sent on reconnecting, and its wait starts then:
// it calls none although the outage lasted longer than that wait (it
// used to be skipped while not connected; armed at once, it would be
// forgotten before NATS was back).
func TestProbeHeldWhileReconnecting(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	px := natstest.NewProxy(t, ns.Addr().String())
	a, _ := open(t, natsCfg(px.URL()), 1, nil)
	waitConnected(t, a)
	const wait = 200 * time.Millisecond
	a.pr.mu.Lock()
	a.pr.wait = wait
	a.pr.mu.Unlock()

	px.Cut()
	waitFor(t, "the connection lost", 10*time.Second, func() bool { return !a.nc.IsConnected() })
	called := make(chan struct{})
	a.Probe("A", "price", func() { close(called) })
	time.Sleep(3 * wait) // longer than the wait: the probe must still be waiting
	px.Mend()
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatalf("probe made while NATS was down: none not called 10 s after NATS was back (state %s)", a.Stats().State)
	}
}
