package server

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestTakeQueued: QueueMsg frames of the matching sids leave the outbox,
// in order, and every other frame stays, in order.
func TestTakeQueued(t *testing.T) {
	t.Parallel()
	m := &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "a", Event: "e", Data: []byte("1")}
	msg := wire.AppendMsg(nil, m)
	q := func(sid uint32, data string) []byte {
		mm := *m
		mm.Data = []byte(data)
		return wire.AppendQueueBody(nil, sid, wire.AppendMsg(nil, &mm)[wire.LenSize:])
	}
	pong := wire.AppendU64(nil, wire.TypePong, 9)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tt := range []struct {
		desc        string
		buf, more   []byte
		sid         uint32 // 0: every sid
		kept, taken []byte
	}{
		{"empty", nil, nil, 0, nil, nil},
		{"nothing queued", cat(msg, pong), nil, 0, cat(msg, pong), nil},
		{"all queued", cat(q(1, "a"), q(2, "b")), nil, 0, nil, cat(q(1, "a"), q(2, "b"))},
		{"one sid", cat(q(1, "a"), msg, q(2, "b"), pong, q(1, "c")), nil, 1, cat(msg, q(2, "b"), pong), cat(q(1, "a"), q(1, "c"))},
		{"more after buf", cat(msg, q(1, "b")), cat(q(1, "a"), pong, q(2, "x")), 0, msg, cat(q(1, "b"), q(1, "a"), q(2, "x"))},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			match := func(s uint32) bool { return tt.sid == 0 || s == tt.sid }
			kept, taken := takeQueued(bytes.Clone(tt.buf), tt.more, match)
			if !bytes.Equal(kept, tt.kept) || !bytes.Equal(taken, tt.taken) {
				t.Fatalf("kept %x\nwant %x\ntaken %x\n want %x", kept, tt.kept, taken, tt.taken)
			}
		})
	}
}

func TestUnwrittenFrames(t *testing.T) {
	t.Parallel()
	a := wire.AppendU64(nil, wire.TypePong, 1) // 13 bytes
	b := wire.AppendU64(nil, wire.TypePong, 2)
	batch := append(bytes.Clone(a), b...)
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{0, batch}, {12, batch}, {13, b}, {20, b}, {26, nil},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := unwrittenFrames(batch, tt.n); !bytes.Equal(got, tt.want) || (len(got) == 0) != (len(tt.want) == 0) {
				t.Fatalf("unwrittenFrames(%d) = %x, want %x", tt.n, got, tt.want)
			}
		})
	}
}
