package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/natstest"
)

// The stats call answers at once while nats.go's write to a NATS server
// that reads nothing holds nats.go's connection lock: what it reports of
// the backbone (state, URL, buffered bytes, subjects) is read without that
// lock.
func TestBackboneStatsWhileNATSStalls(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	px := newPauseProxy(t, ns.Addr().String())
	c1 := bbConfig(t, []string{px.url()}, `{"maxframe": 65536, "channels": {"A": {"propagatetonet": true}}}`)
	c1.NATS.OutBuffer = 65536 // the publisher's bound: 1 MiB (its least) and one largest frame
	h1 := ntStart(t, c1)
	bbConnected(t, h1)
	_, _ = ntListen(t, h1, "A", ".*") // a subscription for Subjects to list
	bbSubjects(t, h1, "netcluster.default.A.>")
	ctl := ctlControl(t, h1.dir)
	// The stall lasts until the test ends it, so a stats call that waits
	// for nats.go's lock never returns: 10 s tells that from a slow
	// answer of a -race test process on a loaded machine (1.04 s seen).
	const bound = 10 * time.Second
	stats := func(when string) *control.BackboneStats {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		start := time.Now()
		b, err := ctl.RoundTrip(ctx, []byte(`{"cmd":"stats"}`))
		if err != nil {
			t.Fatalf("%s: stats: %v after %v", when, err, time.Since(start))
		}
		var rep control.Reply
		var st control.Stats
		if err := json.Unmarshal(b, &rep); err != nil || !rep.OK {
			t.Fatalf("%s: stats reply %s", when, b)
		}
		if err := json.Unmarshal(rep.Result, &st); err != nil || st.Backbone == nil {
			t.Fatalf("%s: stats result %s", when, rep.Result)
		}
		return st.Backbone
	}
	if st := stats("connected"); st.State != "connected" || st.URL != px.url() || len(withoutAnswers(st.Subjects)) != 1 {
		t.Fatalf("before the stall: %+v", st)
	}

	a := ctlAgent(t, h1.dir, "A")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	px.paused.Store(true)
	t.Cleanup(func() { px.paused.Store(false) }) // a failed check lets the sender go
	sent := make(chan error, 1)
	go func() {
		data := make([]byte, 1000)
		for range 30000 {
			if err := a.EmitRaw(ctx, "e", data); err != nil {
				sent <- err
				return
			}
		}
		sent <- a.Flush(ctx)
	}()
	// The publisher stops taking messages once nats.go's write is stuck
	// (the socket's buffers are full): its queue then grows past three
	// quarters of its bound.
	deadline := time.Now().Add(30 * time.Second)
	for st := stats("stalling"); st.Buffered < 3<<20/4; st = stats("stalling") {
		if time.Now().After(deadline) {
			t.Fatalf("the write never stalled: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 10 {
		if st := stats("stalled"); st.State != "connected" || st.URL != px.url() || len(withoutAnswers(st.Subjects)) != 1 {
			t.Fatalf("while stalled: %+v", st)
		}
		time.Sleep(30 * time.Millisecond)
	}
	px.paused.Store(false)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
