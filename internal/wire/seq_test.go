package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// testdata/acks.json holds the vectors of the protocol version 3 frames
// (acknowledged messages), in the conventions of vectors.json.

type acksFile struct {
	Comment   string
	Frames    []ackVector
	Malformed []malformedVector
}

type ackVector struct {
	Name        string
	Description string
	Type        string
	Stream      uint32
	Seq         uint64
	Msg         *msgFields
	Hex         string
	AsMsg       string
}

func loadAcks(tb testing.TB) *acksFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/acks.json")
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var af acksFile
	if err := dec.Decode(&af); err != nil {
		tb.Fatalf("testdata/acks.json: %v", err)
	}
	if len(af.Frames) == 0 || len(af.Malformed) == 0 {
		tb.Fatal("testdata/acks.json: a section is empty")
	}
	return &af
}

// TestAckVectors encodes each vector's fields and compares the bytes, and
// decodes the bytes and compares the fields.
func TestAckVectors(t *testing.T) {
	for _, v := range loadAcks(t).Frames {
		t.Run(v.Name, func(t *testing.T) {
			want := unhex(v.Hex)
			switch v.Type {
			case "seqmsg":
				m := v.Msg.msg()
				got := wire.AppendSeqMsg(nil, v.Stream, v.Seq, &m)
				if !bytes.Equal(got, want) {
					t.Fatalf("AppendSeqMsg:\n got %x\nwant %x", got, want)
				}
				if n := wire.SeqMsgSize(&m); n != len(want) {
					t.Fatalf("SeqMsgSize %d, frame %d", n, len(want))
				}
				f, rest, ok := wire.Split(want)
				if !ok || len(rest) != 0 || f.Type != wire.TypeSeqMsg {
					t.Fatalf("Split: %v %d %s", ok, len(rest), wire.TypeName(f.Type))
				}
				stream, seq, mv, err := wire.ParseSeqMsg(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if stream != v.Stream || seq != v.Seq || !reflect.DeepEqual(normMsg(mv.Msg()), m) {
					t.Fatalf("ParseSeqMsg = %d %d %+v, want %d %d %+v", stream, seq, mv.Msg(), v.Stream, v.Seq, m)
				}
				if s2, q2, ok := wire.SeqOf(f.Payload); !ok || s2 != stream || q2 != seq {
					t.Fatalf("SeqOf = %d %d %v", s2, q2, ok)
				}
				if as := wire.AppendMsgOfSeq(nil, f.Payload); !bytes.Equal(as, unhex(v.AsMsg)) {
					t.Fatalf("AppendMsgOfSeq:\n got %x\nwant %x", as, unhex(v.AsMsg))
				}
				if as := wire.AppendMsg(nil, &m); !bytes.Equal(as, unhex(v.AsMsg)) {
					t.Fatalf("asMsg is not the Msg of the same fields: %x", as)
				}
			case "ack":
				if got := wire.AppendU64(nil, wire.TypeAck, v.Seq); !bytes.Equal(got, want) {
					t.Fatalf("AppendU64(ack):\n got %x\nwant %x", got, want)
				}
				if n, err := wire.ParseU64(want[wire.HeaderLen:]); err != nil || n != v.Seq {
					t.Fatalf("ParseU64 = %d, %v", n, err)
				}
			default:
				t.Fatalf("unknown vector type %q", v.Type)
			}
		})
	}
}

// TestAckMalformed checks that each malformed payload is refused with an
// error that says what is wrong.
func TestAckMalformed(t *testing.T) {
	for _, v := range loadAcks(t).Malformed {
		t.Run(v.Name, func(t *testing.T) {
			b := unhex(v.Hex)
			var err error
			switch b[4] {
			case wire.TypeSeqMsg:
				_, _, _, err = wire.ParseSeqMsg(b[wire.HeaderLen:])
			case wire.TypeAck:
				_, err = wire.ParseU64(b[wire.HeaderLen:])
			}
			if err == nil || !strings.Contains(err.Error(), v.Error) {
				t.Fatalf("error %v, want one containing %q", err, v.Error)
			}
		})
	}
}

// FuzzSeqMsg decodes random payloads as SeqMsg: the decoder never panics,
// its errors are ErrTruncated, ErrTrailing (never, as data runs to the
// end) or ErrBadSeq, and what decodes re-encodes to the same frame, whose
// Msg form is the Msg of the same fields. Seeded from testdata/acks.json.
func FuzzSeqMsg(f *testing.F) {
	af := loadAcks(f)
	for _, v := range af.Frames {
		b := unhex(v.Hex)
		f.Add(b[wire.HeaderLen:])
	}
	for _, v := range af.Malformed {
		f.Add(unhex(v.Hex)[wire.HeaderLen:])
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		stream, seq, v, err := wire.ParseSeqMsg(p)
		if err != nil {
			if !errors.Is(err, wire.ErrTruncated) && !errors.Is(err, wire.ErrBadSeq) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		m := v.Msg()
		again := wire.AppendSeqMsg(nil, stream, seq, &m)
		frame := append(wire.AppendHeader(nil, wire.TypeSeqMsg, len(p)), p...)
		if !bytes.Equal(again, frame) {
			t.Fatalf("re-encoded %x, want %x", again, frame)
		}
		if as := wire.AppendMsgOfSeq(nil, p); !bytes.Equal(as, wire.AppendMsg(nil, &m)) {
			t.Fatalf("AppendMsgOfSeq %x differs from the Msg of the same fields", as)
		}
	})
}
