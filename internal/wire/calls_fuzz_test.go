package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// FuzzCallFrames decodes a random payload as each version 2 frame type: no
// decoder panics, every error is ErrTruncated, ErrTrailing or ErrBadInner,
// and whatever decodes re-encodes to exactly the same frame (the encoding
// is canonical). Seeded from testdata/calls.json.
func FuzzCallFrames(f *testing.F) {
	cf := loadCalls(f)
	for _, v := range cf.Frames {
		b := unhex(v.Hex)
		f.Add(b[4], b[wire.HeaderLen:])
		f.Add(b[4], b[wire.HeaderLen:len(b)-1])
	}
	for _, v := range cf.Malformed {
		b := unhex(v.Hex)
		f.Add(b[4], b[wire.HeaderLen:])
	}
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		typ = versionCallsTypes[int(typ)%len(versionCallsTypes)]
		frame := append(wire.AppendHeader(nil, typ, len(p)), p...)
		var again []byte
		var err error
		switch typ {
		case wire.TypeCall:
			var id uint64
			var v wire.MsgView
			if id, v, err = wire.ParseCall(p); err == nil {
				m := v.Msg()
				again = wire.AppendCall(nil, id, &m)
				if wire.CallSize(&m) != len(frame) {
					t.Fatalf("CallSize %d, frame %d", wire.CallSize(&m), len(frame))
				}
			}
		case wire.TypeAnswer:
			var id uint64
			var to wire.AddrView
			var v wire.MsgView
			if id, to, v, err = wire.ParseAnswer(p); err == nil {
				m, a := v.Msg(), to.Addr()
				again = wire.AppendAnswer(nil, id, &a, &m)
				if wire.AnswerSize(&a, &m) != len(frame) {
					t.Fatalf("AnswerSize %d, frame %d", wire.AnswerSize(&a, &m), len(frame))
				}
			}
		case wire.TypeNoResponders:
			var id uint64
			if id, err = wire.ParseU64(p); err == nil {
				again = wire.AppendU64(nil, typ, id)
			}
		case wire.TypeQueueListen:
			var q wire.QueueListen
			if q, err = wire.ParseQueueListen(p); err == nil {
				again = wire.AppendQueueListen(nil, q)
			}
		case wire.TypeQueueUnlisten:
			var sid uint32
			if sid, err = wire.ParseQueueUnlisten(p); err == nil {
				again = wire.AppendQueueUnlisten(nil, sid)
			}
		case wire.TypeQueueMsg:
			var sid uint32
			var inner []byte
			var it byte
			if sid, it, inner, err = wire.ParseQueueMsg(p); err == nil {
				again = wire.AppendQueueMsg(nil, sid, append(wire.AppendHeader(nil, it, len(inner)), inner...))
			}
		}
		if err != nil {
			if !errors.Is(err, wire.ErrTruncated) && !errors.Is(err, wire.ErrTrailing) && !errors.Is(err, wire.ErrBadInner) {
				t.Fatalf("%s: unexpected error %v", wire.TypeName(typ), err)
			}
			return
		}
		if !bytes.Equal(again, frame) {
			t.Fatalf("%s re-encoded:\n got %x\nwant %x", wire.TypeName(typ), again, frame)
		}
	})
}
