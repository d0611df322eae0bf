package server

import (
	"fmt"
	"testing"
)

// listeningChannel returns a bbNode whose durable channel D has members
// agents, only the last of which listens (to "e").
func listeningChannel(tb testing.TB, members int) *bbNode {
	tb.Helper()
	s := &Server{}
	ch := newChannel(s, "D")
	st := &settings{}
	st.AcceptNet = true
	ch.settings.Store(st)
	var last *conn
	for i := range members {
		last = &conn{ch: ch, id: fmt.Sprint(i)}
		if _, ok := ch.join(last); !ok {
			tb.Fatal("join refused")
		}
	}
	if err := ch.index.Add(last, "e"); err != nil {
		tb.Fatal(err)
	}
	n := &bbNode{srv: s}
	chans := map[string]*channel{"D": ch}
	n.chans.Store(&chans)
	return n
}

// The durable consumer asks bbNode.listening once per stored envelope:
// it allocates nothing, however many agents joined the channel.
func TestBackboneListeningAllocs(t *testing.T) {
	for _, members := range []int{1, 50} {
		n := listeningChannel(t, members)
		if !n.listening("D") {
			t.Fatalf("%d members: not listening", members)
		}
		if a := testing.AllocsPerRun(100, func() { n.listening("D") }); a != 0 {
			t.Errorf("%d members: %v allocs per call, want 0", members, a)
		}
	}
}

func BenchmarkBackboneListening(b *testing.B) {
	for _, members := range []int{1, 50} {
		b.Run(fmt.Sprint(members), func(b *testing.B) {
			n := listeningChannel(b, members)
			b.ReportAllocs()
			for b.Loop() {
				n.listening("D")
			}
		})
	}
}
