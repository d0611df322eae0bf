package backbone

import (
	"encoding/binary"
	"log/slog"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// delivered is one call of a receiver's DeliverFunc.
type delivered struct {
	frames int
	size   int
	stream Stream
}

// newTestReceiver returns a plain receiver of a backbone that is not
// connected, and the calls it makes to its DeliverFunc.
func newTestReceiver(t testing.TB) (*receiver, *[]delivered) {
	t.Helper()
	var got []delivered
	b := &Backbone{subj: newSubjects("netcluster", "default")}
	b.deliver = func(_ NodeID, frames []byte, s Stream) int {
		n := 0
		for range wire.Frames(frames) {
			n++
		}
		got = append(got, delivered{n, len(frames), s})
		return len(frames)
	}
	b.warn.log = slog.New(slog.DiscardHandler)
	return newReceiver(b), &got
}

// batchEnv returns a batch envelope of frames from node.
func batchEnv(node NodeID, seq uint64, frames ...[]byte) []byte {
	b := appendEnvHeader(nil, kindBatch, node, 1, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(frames)))
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// A batch's Msg frames of one channel go to the server in one call, a
// Stream (their count and largest size) when they are equal from their
// channel through their event, whatever their flags and data; not one
// when their agent, node or event differ, or the first is cut short
// before its event's end.
func TestReceiveBatchStreams(t *testing.T) {
	t.Parallel()
	node := NodeID{7}
	msg := func(flags byte, agent, node, event string, data int) []byte {
		return wire.AppendMsg(nil, &wire.Msg{Flags: flags, Channel: "A", Agent: agent, Node: node, Event: event, Data: make([]byte, data)})
	}
	cut := msg(0, "ag1", "", "ev", 3)
	cut[wire.HeaderLen+1+2+4+1] = 0xff // the event's length, past the frame's end
	small, big := msg(0, "ag1", "", "ev", 1), msg(wire.FlagJSON, "ag1", "", "ev", 40)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   []delivered
	}{
		{"one stream", [][]byte{small, big, small}, []delivered{
			{3, 2*len(small) + len(big), Stream{Frames: 3, Biggest: len(big)}}}},
		{"another agent", [][]byte{small, msg(0, "ag2", "", "ev", 1), small}, []delivered{
			{3, 3 * len(small), Stream{}}}},
		{"another node", [][]byte{small, msg(0, "ag1", "0000000000000007", "ev", 1)}, []delivered{
			{2, 2*len(small) + 16, Stream{}}}},
		{"another event", [][]byte{small, small, msg(0, "ag1", "", "ew", 1)}, []delivered{
			{3, 3 * len(small), Stream{}}}},
		{"cut short", [][]byte{cut, small}, []delivered{
			{2, len(cut) + len(small), Stream{}}}},
		{"a frame of another channel", [][]byte{small, small,
			wire.AppendMsg(nil, &wire.Msg{Channel: "B", Agent: "ag1", Event: "ev"}), big}, []delivered{
			{2, 2 * len(small), Stream{Frames: 2, Biggest: len(small)}},
			{1, len(big), Stream{Frames: 1, Biggest: len(big)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, got := newTestReceiver(t)
			subj := r.b.subj.event("A", "ev")
			if ok, _, _ := r.handle(subj, subj, batchEnv(node, 1, tc.frames...)); !ok {
				t.Fatal("the batch was refused")
			}
			if len(*got) != len(tc.want) {
				t.Fatalf("delivered %+v, want %+v", *got, tc.want)
			}
			for i, d := range *got {
				if d != tc.want[i] {
					t.Errorf("delivery %d: %+v, want %+v", i, d, tc.want[i])
				}
			}
		})
	}
}

// BenchmarkReceiveBatch: the receiving server's work per message in the
// backbone (S9's host 2 before routing): a full batch of 128-byte
// messages from one agent, checked and handed over.
func BenchmarkReceiveBatch(b *testing.B) {
	r, _ := newTestReceiver(b)
	r.b.deliver = func(_ NodeID, frames []byte, _ Stream) int { return len(frames) }
	p := &Backbone{}
	copy(p.nodeHex[:], "0000000000000007")
	f := p.appendFrame(nil, frame("A", "ag1", "ev", make([]byte, 128)))
	n := (batchBytes - batchHead) / len(f)
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = f
	}
	env := batchEnv(NodeID{7}, 1, frames...)
	subj := r.b.subj.event("A", "ev")
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	seq := uint64(1)
	for b.Loop() {
		binary.BigEndian.PutUint64(env[14:22], seq) // the next batch
		r.handle(subj, subj, env)
		seq += uint64(n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}
