package backbone

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// leavingListener is a durable consumer's server whose only listener
// leaves while the next delivery is routed (leave): that delivery reaches
// no one, and no one listens after it, until back.
type leavingListener struct {
	s         *sink
	listening atomic.Bool
	leave     atomic.Bool
}

func newLeavingListener() *leavingListener {
	l := &leavingListener{s: newSink()}
	l.listening.Store(true)
	return l
}

func (l *leavingListener) deliver(node NodeID, frames []byte, st Stream) int {
	if l.leave.CompareAndSwap(true, false) {
		l.listening.Store(false)
		return 0
	}
	return l.s.deliver(node, frames, st)
}

// piecesFrame is a Msg frame of channel D of size bytes as publisher node
// sends it (its node id written in).
func piecesFrame(node NodeID, size int) []byte {
	p := &Backbone{}
	copy(p.nodeHex[:], fmt.Sprintf("%x", node[:]))
	f := frame("D", "a", "job", nil)
	return p.appendFrame(nil, frame("D", "a", "job", make([]byte, size-len(f))))
}

// storePieces stores frame f of publisher node in pieces in D's stream.
func storePieces(t *testing.T, url, subj string, node NodeID, f []byte) {
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
	const piece = 3000
	for off := 0; off < len(f); off += piece {
		if _, err := js.Publish(t.Context(), subj, chunkBytes(node, 1, f, off, piece)); err != nil {
			t.Fatal(err)
		}
	}
}

// A large message whose last listener left while its last piece was
// routed waits for the next listener however long that one takes, as a
// message in one piece does: the pieces before the last were acknowledged,
// so the receiver keeps them. They used to expire ReassemblyLimit after
// the first piece, the message lost (the last piece, come again, was
// acknowledged to no one as the end of a message it no longer had).
func TestDurableUnheardPiecesOutlastReassemblyLimit(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{MaxPayload: 4096})
	const limit = 300 * time.Millisecond
	l := newLeavingListener()
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "node2", Durable: dur,
		ReassemblyLimit: limit, Listening: func(string) bool { return l.listening.Load() }}, l.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, b)
	b.SetInterest("D", []string{"job"}, false)
	waitFor(t, "the consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })

	f := piecesFrame(NodeID{7}, 20000)
	l.leave.Store(true)
	storePieces(t, ns.URL(), b.subj.event("D", "job"), NodeID{7}, f)
	waitFor(t, "the last piece sent back", 10*time.Second, func() bool { return b.Stats().Unheard > 0 })
	b.SetInterest("D", nil, false) // the server tells of the leave
	waitFor(t, "the consumer stopped", 10*time.Second, func() bool { return len(b.Stats().Durable) == 0 })
	time.Sleep(3 * limit) // no listener for longer than the reassembly limit

	l.listening.Store(true)
	b.SetInterest("D", []string{"job"}, false)
	waitFor(t, "the message at the next listener", 10*time.Second, func() bool { return l.s.len() == 1 })
	if got, want := len(l.s.msgs()[0].Data), len(parseFrame(t, f).Data); got != want {
		t.Fatalf("got %d bytes of data, want %d", got, want)
	}
	if st := b.Stats(); st.Lost != 0 || st.Expired != 0 || st.Reassembly != 0 {
		t.Fatalf("lost %d, expired %d, reassembly %d; want 0, 0, 0", st.Lost, st.Expired, st.Reassembly)
	}
}

// A reload (a new Backbone that takes the old one's sequences) while a
// large message waits for its sent-back last piece: the new one takes the
// pieces it has too, and delivers the message when the piece comes again.
// It used to take the sequence numbers only: the piece came as the rest of
// a message it had never seen the head of, and older than its sequence,
// so it was acknowledged uncounted, the message gone (lost 0).
func TestDurableUnheardPiecesTakenOnReload(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{MaxPayload: 4096})
	l := newLeavingListener()
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	cfg := Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "node2", Durable: dur,
		Listening: func(string) bool { return l.listening.Load() }}
	b, err := New(cfg, l.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, b)
	b.SetInterest("D", []string{"job"}, false)
	waitFor(t, "the consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })

	f := piecesFrame(NodeID{7}, 20000)
	l.leave.Store(true)
	storePieces(t, ns.URL(), b.subj.event("D", "job"), NodeID{7}, f)
	waitFor(t, "the last piece sent back", 10*time.Second, func() bool { return b.Stats().Unheard > 0 })

	b.StopConsuming()
	b2, err := New(cfg, l.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	b2.TakeSequences(b)
	b.Close()
	if got := b2.Stats().Reassembly; got != len(f) {
		t.Errorf("the new one holds %d bytes of unfinished messages, want the one's %d", got, len(f))
	}
	l.listening.Store(true)
	waitConnected(t, b2)
	b2.SetInterest("D", []string{"job"}, false)
	waitFor(t, "the message at the listener", 10*time.Second, func() bool { return l.s.len() == 1 })
	if got, want := len(l.s.msgs()[0].Data), len(parseFrame(t, f).Data); got != want {
		t.Fatalf("got %d bytes of data, want %d", got, want)
	}
	if st := b2.Stats(); st.Lost != 0 || st.Reassembly != 0 {
		t.Fatalf("lost %d, reassembly %d; want 0, 0", st.Lost, st.Reassembly)
	}
}
