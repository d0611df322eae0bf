package netcluster

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// The reader's shortcut for a message whose header is the last one's
// gives the same Messages as decoding each one in full: headers that
// change in one field only (the JSON flag, the last byte of the event, a
// longer event, another node, another agent), SeqMsg, Msg and QueueMsg
// frames one after the other, numbers already received (dropped, and not
// remembered), and data that starts with what looks like a header.
func TestRecvSeqRepeatedHeaders(t *testing.T) {
	t.Parallel()
	type sent struct {
		msg    wire.Msg
		stream uint32
		seq    uint64
		dup    bool // a number received before: no Message
		plain  bool // sent as a Msg frame, not a SeqMsg
		queued bool // sent as a Msg in a QueueMsg frame
	}
	base := wire.Msg{Channel: "ch", Agent: "a1", Event: "ev", Data: []byte("d")}
	with := func(f func(*wire.Msg)) wire.Msg { m := base; f(&m); return m }
	hdr := wire.AppendSeqMsg(nil, 1, 1, &base)[wire.HeaderLen+wire.SeqMsgOverhead:]
	hdr = hdr[:len(hdr)-1] // base's header, without its data
	steps := []sent{
		{msg: base, stream: 1, seq: 1},
		{msg: with(func(m *wire.Msg) { m.Data = []byte("e") }), stream: 1, seq: 2},
		{msg: with(func(m *wire.Msg) { m.Flags = wire.FlagJSON; m.Data = []byte("{}") }), stream: 1, seq: 3},
		{msg: with(func(m *wire.Msg) { m.Data = nil }), stream: 1, seq: 4},
		{msg: with(func(m *wire.Msg) { m.Event = "ew" }), stream: 1, seq: 5},
		{msg: with(func(m *wire.Msg) { m.Event = "ev2" }), stream: 1, seq: 6},
		{msg: with(func(m *wire.Msg) { m.Event = "ev2"; m.Data = append(bytes.Clone(hdr), 'x') }), stream: 1, seq: 7},
		{msg: with(func(m *wire.Msg) { m.Node = "n1" }), stream: 1, seq: 8},
		{msg: with(func(m *wire.Msg) { m.Node = "n2" }), stream: 1, seq: 9},
		{msg: with(func(m *wire.Msg) { m.Agent = "a2" }), stream: 9, seq: 1},
		{msg: base, stream: 1, seq: 7, dup: true}, // a1's header, an old number
		{msg: with(func(m *wire.Msg) { m.Agent = "a2"; m.Data = []byte("f") }), stream: 9, seq: 2},
		{msg: base, plain: true},
		{msg: with(func(m *wire.Msg) { m.Data = []byte("p") }), plain: true},
		{msg: with(func(m *wire.Msg) { m.Agent = "a3"; m.Data = []byte("q") }), plain: true},
		{msg: with(func(m *wire.Msg) { m.Agent = "a3"; m.Data = []byte("r") }), queued: true},
		{msg: with(func(m *wire.Msg) { m.Agent = "a3"; m.Node = "n3" }), queued: true},
		{msg: with(func(m *wire.Msg) { m.Agent = "a3"; m.Node = "n3"; m.Data = []byte("s") }), plain: true},
		{msg: with(func(m *wire.Msg) { m.Agent = "a2"; m.Data = []byte("g") }), stream: 9, seq: 3},
		{msg: with(func(m *wire.Msg) { m.Agent = "a2"; m.Data = []byte("h") }), stream: 9, seq: 3, dup: true},
		{msg: base, stream: 1, seq: 10},
		{msg: base, stream: 1, seq: 11},
	}
	a := &Agent{}
	var alloc recvAlloc
	for i, s := range steps {
		var got *Message
		if s.queued {
			f := wire.AppendQueueMsg(nil, 5, wire.AppendMsg(nil, &s.msg))
			m, sid, err := a.readCall(&alloc, &alloc, wire.Frame{Type: wire.TypeQueueMsg, Payload: f[wire.HeaderLen:]})
			if err != nil || sid != 5 {
				t.Fatalf("step %d: sid %d, %v", i, sid, err)
			}
			got = m
		} else if s.plain {
			f := wire.AppendMsg(nil, &s.msg)
			var err error
			if got, err = alloc.received(f[wire.HeaderLen:]); err != nil {
				t.Fatal(err)
			}
		} else {
			f := wire.AppendSeqMsg(nil, s.stream, s.seq, &s.msg)
			m, gap, err := a.recvSeq(&alloc, f[wire.HeaderLen:])
			if err != nil || gap != nil {
				t.Fatalf("step %d: %v, %v", i, gap, err)
			}
			if s.dup != (m == nil) {
				t.Fatalf("step %d: message %+v, want one: %v", i, m, !s.dup)
			}
			if m == nil {
				continue
			}
			got = m
		}
		want := fmt.Sprintf("%s %s %s %s %q %v", s.msg.Event, s.msg.Channel, s.msg.Agent, s.msg.Node, s.msg.Data, s.msg.Flags&wire.FlagJSON != 0)
		if g := fmt.Sprintf("%s %s %s %s %q %v", got.Event, got.Channel, got.Agent, got.Node, got.Data, got.JSON); g != want {
			t.Fatalf("step %d: got %s, want %s", i, g, want)
		}
	}
}
