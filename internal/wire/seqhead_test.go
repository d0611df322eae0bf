package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestSeqMsgHead: a head's frames are AppendSeqMsg's, byte for byte,
// whatever the fields' lengths, and appended after what dst holds.
func TestSeqMsgHead(t *testing.T) {
	t.Parallel()
	for _, m := range []wire.Msg{
		{Channel: "A", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)},
		{Flags: wire.FlagJSON, Channel: "bench", Agent: "0123456789abcdef", Event: "e", Data: []byte(`"x"`)},
		{Channel: strings.Repeat("c", 255), Agent: strings.Repeat("a", 64), Node: "n1", Event: strings.Repeat("e", 1000)},
		{Channel: "", Agent: "", Event: "", Data: nil},
	} {
		for _, seq := range []uint64{1, 2, 1 << 40, ^uint64(0)} {
			want := wire.AppendSeqMsg([]byte("prefix"), 0xa1b2c3d4, seq, &m)
			h := wire.NewSeqMsgHead(0xa1b2c3d4, &wire.Msg{Flags: 0xff, Channel: m.Channel, Agent: m.Agent, Node: m.Node, Event: "other", Data: []byte("other")})
			got := h.Append([]byte("prefix"), seq, m.Flags, m.Event, m.Data)
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v seq %d:\nhead's %x\nwant   %x", m, seq, got, want)
			}
			if n := h.Size(m.Event, m.Data); n != wire.SeqMsgSize(&m) || n != len(want)-len("prefix") {
				t.Fatalf("%+v: Size %d, SeqMsgSize %d, frame %d", m, n, wire.SeqMsgSize(&m), len(want)-len("prefix"))
			}
		}
	}
}

// BenchmarkSeqMsgHead compares a head's Append with AppendSeqMsg for a
// 128-byte message.
func BenchmarkSeqMsgHead(b *testing.B) {
	m := wire.Msg{Channel: "bench", Agent: "0123456789abcdef", Event: "bench", Data: make([]byte, 128)}
	buf := make([]byte, 0, 4096)
	b.Run("head", func(b *testing.B) {
		h := wire.NewSeqMsgHead(7, &m)
		for i := 0; b.Loop(); i++ {
			buf = h.Append(buf[:0], uint64(i+1), 0, m.Event, m.Data)
		}
	})
	b.Run("AppendSeqMsg", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			buf = wire.AppendSeqMsg(buf[:0], 7, uint64(i+1), &m)
		}
	})
}
