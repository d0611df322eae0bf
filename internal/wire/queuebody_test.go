package wire_test

import (
	"bytes"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestQueueBody: AppendQueueBody makes the frame AppendQueueMsg makes,
// and SplitQueueMsg gives back its sid and body; a payload shorter than
// the sid does not split.
func TestQueueBody(t *testing.T) {
	t.Parallel()
	inner := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a", Event: "e", Data: []byte("d")})
	body := inner[wire.LenSize:]
	f := wire.AppendQueueBody([]byte("x"), 0xa1b2c3d4, body)[1:]
	if want := wire.AppendQueueMsg(nil, 0xa1b2c3d4, inner); !bytes.Equal(f, want) {
		t.Fatalf("AppendQueueBody %x\nAppendQueueMsg %x", f, want)
	}
	if of := wire.AppendQueueOf([]byte("x"), 0xa1b2c3d4, body[0], body[1:])[1:]; !bytes.Equal(of, f) {
		t.Fatalf("AppendQueueOf %x\nAppendQueueBody %x", of, f)
	}
	// The Msg of a SeqMsg, from the SeqMsg's payload in place.
	m := wire.Msg{Channel: "A", Agent: "a", Event: "e", Data: []byte("d")}
	seq := wire.AppendSeqMsg(nil, 9, 10, &m)[wire.HeaderLen:]
	of := wire.AppendQueueOf(nil, 5, wire.TypeMsg, seq[wire.SeqMsgOverhead:])
	if want := wire.AppendQueueMsg(nil, 5, wire.AppendMsgOfSeq(nil, seq)); !bytes.Equal(of, want) {
		t.Fatalf("AppendQueueOf of a SeqMsg %x\nAppendQueueMsg of its Msg %x", of, want)
	}
	fr, rest, ok := wire.Split(f)
	if !ok || len(rest) != 0 || fr.Type != wire.TypeQueueMsg {
		t.Fatalf("not one QueueMsg frame: %x", f)
	}
	sid, got, ok := wire.SplitQueueMsg(fr.Payload)
	if !ok || sid != 0xa1b2c3d4 || !bytes.Equal(got, body) {
		t.Fatalf("SplitQueueMsg = %#x, %x, %v; want %#x, %x", sid, got, ok, uint32(0xa1b2c3d4), body)
	}
	if psid, typ, pin, err := wire.ParseQueueMsg(fr.Payload); err != nil || psid != sid || typ != wire.TypeMsg || !bytes.Equal(pin, body[1:]) {
		t.Fatalf("ParseQueueMsg disagrees: %#x %d %x %v", psid, typ, pin, err)
	}
	for n := range wire.QueueMsgOverhead {
		if _, _, ok := wire.SplitQueueMsg(fr.Payload[:n]); ok {
			t.Fatalf("a %d-byte payload splits", n)
		}
	}
}

func TestWholeLen(t *testing.T) {
	t.Parallel()
	a := wire.AppendU64(nil, wire.TypePong, 1)
	b := wire.AppendU64(nil, wire.TypePong, 2)
	batch := append(bytes.Clone(a), b...)
	for _, tt := range []struct {
		b    []byte
		want int
	}{
		{nil, 0},
		{a[:len(a)-1], 0},
		{a, len(a)},
		{batch[:len(batch)-1], len(a)},
		{batch, len(batch)},
		{append(bytes.Clone(batch), 0, 0, 0, 0, 1), len(batch)},
	} {
		if got := wire.WholeLen(tt.b); got != tt.want {
			t.Errorf("WholeLen(%d bytes) = %d, want %d", len(tt.b), got, tt.want)
		}
	}
}
