package backbone

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// chunkBytes returns the envelope of the piece of frame at offset off, of
// n bytes at most, as a publisher with node id node sends it.
func chunkBytes(node NodeID, seq uint64, frame []byte, off, n int) []byte {
	b := appendEnvHeader(nil, kindChunk, node, 1, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(frame)))
	b = binary.BigEndian.AppendUint32(b, uint32(off))
	return append(b, frame[off:min(off+n, len(frame))]...)
}

// TestPlainPartialExpires: a publisher that dies after the first pieces of
// a large message leaves it unfinished; the plain receiver drops it
// ReassemblyLimit later, though nothing else arrives, counted lost and
// expired, and gives its memory back. The rest of it, coming late, is not
// delivered nor counted again; later large messages get through.
func TestPlainPartialExpires(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true, MaxPayload: 4096})
	const limit = 300 * time.Millisecond
	s := newSink()
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "node2", ReassemblyLimit: limit}, s.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, b)
	b.SetInterest("A", []string{"job"}, false)
	waitFor(t, "subscriptions", 5*time.Second, func() bool {
		return len(subjectsOnServer(t, ns, "netcluster.default.")) == 2 // the subject and its piece subject
	})

	dead := NodeID{7}
	f := publisherFrame(dead, 20000)
	subj := b.subj.event("A", "job")
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	const piece = 3000
	// The receiver's clock starts at the first piece, which may arrive
	// before Publish returns: the lower bound is taken before it.
	started := time.Now()
	for _, err := range []error{
		nc.Publish(subj, chunkBytes(dead, 1, f, 0, piece)),
		nc.Publish(b.subj.pieces(subj), chunkBytes(dead, 1, f, piece, piece)),
		nc.Flush(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	nc.Close() // the publisher is gone mid-message
	checkExpired(t, b, len(f), started, limit)

	// The rest of it, late (the publisher came back): neither delivered
	// nor counted again.
	nc, err = nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for off := 2 * piece; off < len(f); off += piece {
		if err := nc.Publish(b.subj.pieces(subj), chunkBytes(dead, 1, f, off, piece)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// A whole large message from a live publisher gets through.
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	waitConnected(t, a)
	if err := a.Send("A", "job", frame("A", "ag1", "job", make([]byte, 20000))); err != nil {
		t.Fatal(err)
	}
	s.waitLen(t, 1, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if st := b.Stats(); s.len() != 1 || st.Lost != 1 || st.Expired != 1 || st.Reassembly != 0 {
		t.Fatalf("%d delivered, stats %+v; want the live message only, lost 1", s.len(), st)
	}
}

// TestReplayBoundsPieces: a stored first piece that claims a frame larger
// than any server reassembles reserves nothing (a replay would otherwise
// allocate what any publisher on NATS claims) and its message is skipped;
// one within the bound is put together.
func TestReplayBoundsPieces(t *testing.T) {
	t.Parallel()
	node := NodeID{7}
	f := publisherFrame(node, 3000)
	r := replayDecoder{max: len(f)}
	var got [][]byte
	emit := func(_ NodeID, frame []byte) { got = append(got, bytes.Clone(frame)) }
	huge := appendEnvHeader(nil, kindChunk, node, 1, 1)
	huge = binary.BigEndian.AppendUint32(huge, 64<<20) // total
	huge = binary.BigEndian.AppendUint32(huge, 0)      // offset
	huge = append(huge, f[:1000]...)
	r.add(huge, emit)
	if len(r.part) != 0 {
		t.Fatalf("%d messages held after a first piece claiming 64 MiB", len(r.part))
	}
	for off := 0; off < len(f); off += 1000 {
		r.add(chunkBytes(node, 2, f, off, 1000), emit)
	}
	if len(got) != 1 || !bytes.Equal(got[0], f) || len(r.part) != 0 {
		t.Fatalf("%d frames replayed, %d held; want the one within the bound", len(got), len(r.part))
	}
}

// TestDurablePartialExpires is TestPlainPartialExpires for a durable
// channel's consumer: a large message whose publisher died after its
// first pieces were stored is dropped ReassemblyLimit later, though
// nothing else arrives on the channel, counted lost and expired.
func TestDurablePartialExpires(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{MaxPayload: 4096})
	const limit = 300 * time.Millisecond
	s := newSink()
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{2}, NodeName: "node2", Durable: dur, ReassemblyLimit: limit}, s.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitConnected(t, b)
	b.SetInterest("D", []string{"job"}, false)
	waitFor(t, "the consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })

	dead := NodeID{7}
	f := publisherFrame(dead, 20000)
	subj := b.subj.event("D", "job")
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const piece = 3000
	// Before the first piece, as above.
	started := time.Now()
	for off := 0; off < 2*piece; off += piece { // stored, then the publisher is gone
		if _, err := js.Publish(t.Context(), subj, chunkBytes(dead, 1, f, off, piece)); err != nil {
			t.Fatal(err)
		}
	}
	checkExpired(t, b, len(f), started, limit)
}

// checkExpired waits until b holds the first pieces (size bytes) of an
// unfinished message, then until it expires: not before limit after
// started, counted lost and expired, nothing delivered.
func checkExpired(t *testing.T, b *Backbone, size int, started time.Time, limit time.Duration) {
	t.Helper()
	waitFor(t, "the first pieces", 5*time.Second, func() bool { return b.Stats().Reassembly == size })
	waitFor(t, "the unfinished message to expire", 5*time.Second, func() bool { return b.Stats().Reassembly == 0 })
	if d := time.Since(started); d < limit {
		t.Errorf("dropped after %v, before the limit %v", d, limit)
	}
	if st := b.Stats(); st.Lost != 1 || st.Expired != 1 || st.MsgsIn != 0 {
		t.Fatalf("stats %+v, want lost 1, expired 1, nothing delivered", st)
	}
}
