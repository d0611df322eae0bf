package netcluster

import (
	"bytes"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

func TestOnlyMsgs(t *testing.T) {
	t.Parallel()
	m1 := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a", Event: "e1", Data: []byte("one")})
	m2 := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a", Event: "e2"})
	listen := wire.AppendListen(nil, wire.TypeListen, "e.*")
	ping := wire.AppendU64(nil, wire.TypePing, 3)
	call := wire.AppendCall(nil, 1, &wire.Msg{Channel: "A", Agent: "a", Event: "q"})
	answer := wire.AppendAnswer(nil, 2, &wire.Addr{Channel: "B", Agent: "b"}, &wire.Msg{Channel: "A", Agent: "a"})
	ql := wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "g", Pattern: "e"})
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	for _, tt := range []struct {
		name    string
		calls   bool
		in, out []byte
	}{
		{"empty", true, nil, nil},
		{"only msgs", true, cat(m1, m2), cat(m1, m2)},
		{"none", true, cat(listen, ping, ql), nil},
		{"mixed", true, cat(listen, m1, ping, listen, m2, ping), cat(m1, m2)},
		{"calls kept", true, cat(call, ql, m1, answer, ping), cat(call, m1, answer)},
		{"calls dropped for a version 1 server", false, cat(call, m1, answer), m1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Clone(tt.in)
			got := onlyMsgs(in, tt.calls)
			if !bytes.Equal(got, tt.out) {
				t.Fatalf("onlyMsgs = %x, want %x", got, tt.out)
			}
			if len(got) > 0 && &got[0] != &in[0] {
				t.Fatal("onlyMsgs did not work in place")
			}
		})
	}
}

func TestUnwritten(t *testing.T) {
	t.Parallel()
	var batch []byte
	var ends []int // where each frame ends
	for i, size := range []int{20, 33, 17} {
		m := wire.Msg{Event: "e", Data: bytes.Repeat([]byte{byte(i)}, size)}
		batch = wire.AppendMsg(batch, &m)
		ends = append(ends, len(batch))
	}
	for _, tt := range []struct {
		n    int
		from int // the first byte of batch that goes out again
	}{
		{0, 0},
		{1, 0},
		{ends[0] - 1, 0},
		{ends[0], ends[0]},
		{ends[1] - 1, ends[0]},
		{ends[1], ends[1]},
		{ends[2] - 1, ends[1]},
		{ends[2], ends[2]},
	} {
		got := unwritten(batch, tt.n)
		if !bytes.Equal(got, batch[tt.from:]) {
			t.Errorf("unwritten(%d of %d bytes) keeps %d bytes, want the %d from byte %d", tt.n, len(batch), len(got), len(batch)-tt.from, tt.from)
		}
		if len(got) > 0 && &got[0] == &batch[tt.from] {
			t.Errorf("unwritten(%d) aliases the batch; the writer reuses it", tt.n)
		}
	}
}

// The receive path remembers each field's last name: names that change
// from one message to the next still come out right.
func TestRecvAllocFieldMemo(t *testing.T) {
	var alloc recvAlloc
	for i, m := range []wire.Msg{
		{Channel: "A", Agent: "a1", Event: "x"},
		{Channel: "A", Agent: "a1", Event: "x"},
		{Channel: "A", Agent: "a2", Node: "n1", Event: "y"},
		{Channel: "B", Agent: "a1", Event: "x"},
		{Channel: "B", Agent: "", Node: "n1", Event: "x"},
	} {
		frame := wire.AppendMsg(nil, &m)
		got, err := alloc.received(frame[wire.HeaderLen:])
		if err != nil {
			t.Fatal(err)
		}
		if got.Channel != m.Channel || got.Agent != m.Agent || got.Node != m.Node || got.Event != m.Event {
			t.Errorf("message %d: %+v, want %+v", i, got, m)
		}
	}
}
