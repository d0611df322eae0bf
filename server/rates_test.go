package server

import (
	"context"
	"io"
	"math"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
)

// The server computes each channel's rates, and their totals, from two
// samples of its counters.
func TestRates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bus := config.New()
	bus.Channels["A"] = &config.Channel{}
	bus.Channels["B"] = &config.Channel{}
	s, err := New(Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.rates.every = time.Hour // the test takes the samples
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Channels[0].Rates != nil || st.Totals.Rates != nil {
		t.Errorf("rates before two samples: %+v", st.Totals.Rates)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.rates.mu.Lock()
		first := s.rates.prev != nil
		s.rates.mu.Unlock()
		if first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no first sample at Start")
		}
	}
	recv, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(s.Dial))
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close(ctx)
	got := make(chan struct{}, 100)
	recv.On("e", func(*netcluster.Message) { got <- struct{}{} })
	recv.Flush(ctx)
	send, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(s.Dial))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close(ctx)

	t0 := time.Now()
	s.rates.sample(s, t0)
	for range 10 {
		send.EmitRaw(ctx, "e", make([]byte, 100))
	}
	for range 10 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("messages not delivered")
		}
	}
	s.rates.sample(s, t0.Add(2*time.Second))
	st := s.Stats()
	var a *ChannelInfo
	for i := range st.Channels {
		if st.Channels[i].Name == "A" {
			a = &st.Channels[i]
		}
	}
	if a == nil || a.Rates == nil || st.Totals.Rates == nil {
		t.Fatalf("no rates after two samples: %+v", st)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: %v/s, want %v/s", what, got, want)
		}
	}
	near("A msgs in", a.Rates.MsgsIn, 5) // 10 messages in 2 s
	near("A msgs out", a.Rates.MsgsOut, 5)
	near("A bytes in", a.Rates.BytesIn, 500)
	near("A dropped", a.Rates.Dropped, 0)
	near("total msgs in", st.Totals.Rates.MsgsIn, 5)
	if ci, _ := s.Channel("A"); ci.Rates == nil || ci.Rates.MsgsIn != a.Rates.MsgsIn {
		t.Errorf("showchannel's rates %+v differ from stats' %+v", ci.Rates, a.Rates)
	}
	// A quiet second brings the rates back to zero.
	s.rates.sample(s, t0.Add(3*time.Second))
	if r := s.Stats().Totals.Rates; r == nil || r.MsgsIn != 0 {
		t.Errorf("rates after a quiet sample: %+v", r)
	}
}

// Start takes the baseline sample before it accepts agents, so what they
// send before the first tick shows in the first rate. The baseline used to
// be taken by the sampling goroutine, after Start had returned; under load
// it ran after the first messages, which then showed in no rate.
func TestRatesBaselineAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bus := config.New()
	bus.Channels["A"] = &config.Channel{}
	s, err := New(Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.rates.every = time.Hour // the test takes the ticks
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.rates.mu.Lock()
	base := s.rates.prev
	s.rates.mu.Unlock()
	if base == nil {
		t.Fatal("no baseline sample when Start returned")
	}
	for ch, c := range base.channels {
		if c != (ChannelCounters{}) {
			t.Errorf("channel %s's baseline %+v, want zeros", ch.name, c)
		}
	}
	send, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(s.Dial))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close(ctx)
	for range 10 {
		if err := send.EmitRaw(ctx, "e", make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Totals.MsgsIn < 10; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server counted %d of 10 messages", s.Stats().Totals.MsgsIn)
		}
	}
	s.rates.sample(s, base.at.Add(2*time.Second)) // the first tick
	ci, ok := s.Channel("A")
	if !ok || ci.Rates == nil {
		t.Fatalf("no rates of channel A after the first tick: %+v", ci)
	}
	if got := ci.Rates.MsgsIn; got != 5 {
		t.Errorf("first rate %v msgs/s, want 5 (10 messages sent since the baseline, 2 s before the tick)", got)
	}
}
