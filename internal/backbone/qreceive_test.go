package backbone

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// qDelivery is one DeliverGroup call.
type qDelivery struct {
	node NodeID
	g    Group
	n    int
}

// newQueueTestReceiver returns a queue receiver of a backbone that is
// not connected, for MaxMessage max, and the deliveries it makes.
func newQueueTestReceiver(t *testing.T, max int) (*queueReceiver, *[]qDelivery) {
	t.Helper()
	var got []qDelivery
	b := &Backbone{subj: newSubjects("netcluster", "default")}
	b.cfg.MaxMessage = max
	b.cfg.DeliverGroup = func(node NodeID, g Group, frame []byte) {
		got = append(got, qDelivery{node, g, len(frame)})
	}
	b.warn.log = slog.New(slog.DiscardHandler)
	b.qs.init(b)
	return newQueueReceiver(&b.qs), &got
}

// chunkEnv returns the envelope of a piece of frame at offset off, of n
// bytes at most.
func chunkEnv(t *testing.T, node NodeID, seq uint64, frame []byte, off, n int) *envelope {
	t.Helper()
	b := appendEnvHeader(nil, kindChunk, node, 1, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(frame)))
	b = binary.BigEndian.AppendUint32(b, uint32(off))
	b = append(b, frame[off:min(off+n, len(frame))]...)
	e, err := parseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

// publisherFrame returns a Msg frame of channel A of size bytes as a
// publisher with node id node sends it (its node id written in).
func publisherFrame(node NodeID, size int) []byte {
	p := &Backbone{}
	copy(p.nodeHex[:], fmt.Sprintf("%x", node[:]))
	f := frame("A", "a", "job", nil)
	f = frame("A", "a", "job", make([]byte, size-len(f)))
	return p.appendFrame(nil, f)
}

// TestQueueLargestMessage: a frame of MaxMessage bytes grows by the
// publisher's node id on the way; a group gets it whole, as the plain
// subscriptions do.
func TestQueueLargestMessage(t *testing.T) {
	t.Parallel()
	const max = 4000
	r, got := newQueueTestReceiver(t, max)
	node := NodeID{9}
	f := publisherFrame(node, max)
	if len(f) != max+16 {
		t.Fatalf("frame of %d bytes", len(f))
	}
	subj := r.q.b.subj.event("A", "job")
	g := Group{"A", "workers", "job"}
	r.head(subj, g, chunkEnv(t, node, 1, f, 0, 3000))
	r.piece(subj, chunkEnv(t, node, 1, f, 3000, 3000))
	if len(*got) != 1 || (*got)[0].n != len(f) {
		t.Fatalf("deliveries %+v, tooLarge %d", *got, r.q.b.st.tooLarge.Load())
	}
	if r.parts.held != 0 {
		t.Fatalf("held %d after the message", r.parts.held)
	}
}

// TestQueueDuplicateHeads: a head repeated for one group is dropped
// (counted), one per group is delivered once each, and a message goes to
// maxPartGroups groups at most.
func TestQueueDuplicateHeads(t *testing.T) {
	t.Parallel()
	r, got := newQueueTestReceiver(t, 4000)
	node := NodeID{9}
	f := publisherFrame(node, 2000)
	subj := r.q.b.subj.event("A", "job")
	g := Group{"A", "workers", "job"}
	for range 1000 {
		r.head(subj, g, chunkEnv(t, node, 1, f, 0, 1000))
	}
	r.head(subj, Group{"A", "other", "job"}, chunkEnv(t, node, 1, f, 0, 1000))
	if n := len(r.parts.parts[node].groups); n != 2 {
		t.Fatalf("%d groups held for one message", n)
	}
	r.piece(subj, chunkEnv(t, node, 1, f, 1000, len(f)))
	if len(*got) != 2 || (*got)[0].g != g || (*got)[1].g.Name != "other" {
		t.Fatalf("deliveries %+v", *got)
	}
	if d := r.q.b.st.duplicates.Load(); d != 999 {
		t.Fatalf("duplicates %d, want 999", d)
	}

	*got = nil
	for i := range maxPartGroups + 5 {
		r.head(subj, Group{"A", fmt.Sprint("g", i), "job"}, chunkEnv(t, node, 2, f, 0, 1000))
	}
	r.piece(subj, chunkEnv(t, node, 2, f, 1000, len(f)))
	if len(*got) != maxPartGroups {
		t.Fatalf("%d deliveries, want %d", len(*got), maxPartGroups)
	}
	if l := r.q.b.st.lost.Load(); l != 5 {
		t.Fatalf("lost %d, want 5", l)
	}
}

// TestQueuePartialExpires: a large message whose pieces stop coming is
// dropped (lost) reassemblyLimit after its head, on the next head from
// any server, and gives its room back to later messages.
func TestQueuePartialExpires(t *testing.T) {
	t.Parallel()
	const max = 40 << 20
	r, got := newQueueTestReceiver(t, max)
	subj := r.q.b.subj.event("A", "job")
	g := Group{"A", "workers", "job"}
	dead, live := NodeID{1}, NodeID{2}
	f := publisherFrame(dead, max)
	r.head(subj, g, chunkEnv(t, dead, 1, f, 0, 1000))
	if r.parts.held != len(f) {
		t.Fatalf("held %d", r.parts.held)
	}
	// Within the limit, the second message has no room.
	f2 := publisherFrame(live, max)
	r.head(subj, g, chunkEnv(t, live, 1, f2, 0, 1000))
	if n := r.q.b.st.tooLarge.Load(); n != 1 {
		t.Fatalf("tooLarge %d with the first message held", n)
	}
	r.parts.parts[dead].since = time.Now().Add(-r.parts.limit - time.Second)
	r.head(subj, g, chunkEnv(t, live, 2, f2, 0, 1000))
	if r.parts.parts[dead] != nil {
		t.Fatal("the expired message is still held")
	}
	if l := r.q.b.st.lost.Load(); l != 1 {
		t.Fatalf("lost %d, want 1", l)
	}
	if n := r.q.b.st.tooLarge.Load(); n != 1 {
		t.Fatalf("tooLarge %d: the expired message's room was not given back", n)
	}
	for off := 1000; off < len(f2); off += 1 << 20 {
		r.piece(subj, chunkEnv(t, live, 2, f2, off, 1<<20))
	}
	if len(*got) != 1 || r.parts.held != 0 {
		t.Fatalf("deliveries %+v, held %d", *got, r.parts.held)
	}
}

// TestFrameOrigin: a requeued frame names its origin in its Node field.
func TestFrameOrigin(t *testing.T) {
	t.Parallel()
	def, origin := NodeID{1}, NodeID{0xab, 2, 3, 4, 5, 6, 7, 8}
	hexOf := fmt.Sprintf("%x", origin[:])
	msg := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Node: hexOf, Agent: "a", Event: "job"})
	call := wire.AppendCall(nil, 7, &wire.Msg{Channel: "A", Node: hexOf, Agent: "a", Event: "job"})
	for _, tt := range []struct {
		desc  string
		frame []byte
		want  NodeID
	}{
		{"msg", msg, origin},
		{"call", call, origin},
		{"no node", frame("A", "a", "job", nil), def},
		{"bad hex", wire.AppendMsg(nil, &wire.Msg{Channel: "A", Node: "zz00000000000000", Agent: "a", Event: "job"}), def},
		{"truncated", msg[:len(msg)-1], def},
	} {
		if got := frameOrigin(tt.frame, def); got != tt.want {
			t.Errorf("%s: origin %x, want %x", tt.desc, got, tt.want)
		}
	}
}

// TestGoneQueueNamesBounded: groups cycled with fresh names leave at most
// maxGone drained queue names behind, each for goneKeep at most.
func TestGoneQueueNamesBounded(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	b, err := New(Config{NATS: natsCfg(ns.URL()), NodeID: NodeID{3}, NodeName: "node3",
		DeliverGroup: func(NodeID, Group, []byte) {}}, newSink().deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	q := &b.qs
	// All but a few of the names drained now, the rest by real groups
	// cycled: cycling them all took more than goneKeep under -race on a
	// loaded machine, and the first were forgotten by age before the
	// last came (no overflow).
	q.mu.Lock()
	for i := range maxGone - 5 {
		q.gone[fmt.Sprint("old", i)] = time.Now()
	}
	q.mu.Unlock()
	for i := range 15 {
		b.SetGroups("A", []Group{{"A", fmt.Sprint("g", i), "job"}})
		b.SetGroups("A", nil)
	}
	q.mu.Lock()
	n, all := len(q.gone), q.goneAll
	q.mu.Unlock()
	if n > maxGone || all.IsZero() {
		t.Fatalf("%d drained queue names remembered (at most %d), overflow at %v", n, maxGone, all)
	}
	q.mu.Lock()
	q.pruneGoneLocked(time.Now().Add(goneKeep + time.Second))
	n = len(q.gone)
	q.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d drained queue names remembered past goneKeep", n)
	}
}
