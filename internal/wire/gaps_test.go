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

// testdata/gaps.json holds the vectors of the protocol version 4 frames
// (gaps after a crash), in the conventions of vectors.json.

type gapsFile struct {
	Comment   string
	Frames    []gapVector
	Malformed []malformedVector
}

type gapVector struct {
	Name        string
	Description string
	Type        string
	Stream      uint32
	Seq         uint64
	Acked       *uint64 // stream: absent, all of seq acknowledged
	Announced   uint64  // streamend: 0, absent
	Channel     string
	Agent       string
	Refs        []wire.StreamRef
	Hex         string
}

func loadGaps(tb testing.TB) *gapsFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/gaps.json")
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var gf gapsFile
	if err := dec.Decode(&gf); err != nil {
		tb.Fatalf("testdata/gaps.json: %v", err)
	}
	if len(gf.Frames) == 0 || len(gf.Malformed) == 0 {
		tb.Fatal("testdata/gaps.json: a section is empty")
	}
	return &gf
}

// parseGapFrame decodes a version 4 frame's payload by its type.
func parseGapFrame(typ byte, p []byte) (any, error) {
	switch typ {
	case wire.TypeStream:
		st, seq, acked, err := wire.ParseStream(p)
		return [3]uint64{uint64(st), seq, acked}, err
	case wire.TypeStreamEnd:
		return wire.ParseStreamEnd(p)
	case wire.TypeWatch, wire.TypeGone:
		return wire.ParseRefs(nil, p, 4096)
	}
	return nil, errors.New("not a version 4 frame")
}

// TestGapVectors encodes each vector's fields and compares the bytes, and
// decodes the bytes and compares the fields.
func TestGapVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadGaps(t).Frames {
		t.Run(v.Name, func(t *testing.T) {
			want := unhex(v.Hex)
			var got []byte
			var fields any
			switch v.Type {
			case "stream":
				got = wire.AppendStream(nil, v.Stream, v.Seq)
				fields = [3]uint64{uint64(v.Stream), v.Seq, v.Seq}
				if v.Acked != nil {
					got = wire.AppendStreamAcked(nil, v.Stream, v.Seq, *v.Acked)
					fields = [3]uint64{uint64(v.Stream), v.Seq, *v.Acked}
				}
			case "streamend":
				e := wire.StreamEnd{StreamRef: wire.StreamRef{Channel: v.Channel, Agent: v.Agent, Stream: v.Stream}, Seq: v.Seq, Announced: v.Announced}
				got = wire.AppendStreamEnd(nil, e)
				fields = e
			case "watch", "gone":
				got = wire.AppendRefs(nil, typeByName(t, v.Type), v.Refs)
				n := 0
				for _, r := range v.Refs {
					n += wire.RefSize(r)
				}
				if n+wire.HeaderLen != len(want) {
					t.Fatalf("RefSize sums to %d, the frame has %d", n, len(want)-wire.HeaderLen)
				}
				fields = v.Refs
			default:
				t.Fatalf("unknown vector type %q", v.Type)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			f, rest, ok := wire.Split(want)
			if !ok || len(rest) != 0 || wire.TypeName(f.Type) != v.Type {
				t.Fatalf("Split: %v %d %s", ok, len(rest), wire.TypeName(f.Type))
			}
			dec, err := parseGapFrame(f.Type, f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if refs, ok := dec.([]wire.StreamRef); ok && len(refs) == 0 && len(v.Refs) == 0 {
				return // an empty list; nil and empty are the same here
			}
			if !reflect.DeepEqual(dec, fields) {
				t.Fatalf("decoded %+v, want %+v", dec, fields)
			}
		})
	}
}

// TestGapMalformed checks that each malformed payload is refused with an
// error that says what is wrong.
func TestGapMalformed(t *testing.T) {
	t.Parallel()
	for _, v := range loadGaps(t).Malformed {
		t.Run(v.Name, func(t *testing.T) {
			b := unhex(v.Hex)
			_, err := parseGapFrame(b[4], b[wire.HeaderLen:])
			if err == nil || !strings.Contains(err.Error(), v.Error) {
				t.Fatalf("error %v, want one containing %q", err, v.Error)
			}
		})
	}
}

// TestGapNumbers pins the numbers of version 4 (ONLY APPEND).
func TestGapNumbers(t *testing.T) {
	t.Parallel()
	for i, name := range []string{"stream", "streamend", "watch", "gone"} {
		typ := []byte{wire.TypeStream, wire.TypeStreamEnd, wire.TypeWatch, wire.TypeGone}[i]
		if typ != byte(22+i) || wire.TypeName(typ) != name {
			t.Errorf("frame type %s = %d (%q), want %d", name, typ, wire.TypeName(typ), 22+i)
		}
	}
	if wire.VersionGaps != 4 || wire.TypeSeqMsg != 20 || wire.TypeAck != 21 || wire.VersionAcks != 3 {
		t.Errorf("VersionGaps %d, SeqMsg %d, Ack %d, VersionAcks %d", wire.VersionGaps, wire.TypeSeqMsg, wire.TypeAck, wire.VersionAcks)
	}
}

// TestRefsLimit: a Watch of more entries than the limit is refused.
func TestRefsLimit(t *testing.T) {
	t.Parallel()
	refs := []wire.StreamRef{{Channel: "A", Agent: "a", Stream: 1}, {Channel: "A", Agent: "b", Stream: 2}, {Channel: "A", Agent: "c", Stream: 3}}
	b := wire.AppendRefs(nil, wire.TypeWatch, refs)
	got, err := wire.ParseRefs(nil, b[wire.HeaderLen:], 2)
	if !errors.Is(err, wire.ErrTooMany) || len(got) != 2 {
		t.Fatalf("ParseRefs limit 2 of 3: %d entries, %v; want 2 and ErrTooMany", len(got), err)
	}
	if got, err := wire.ParseRefs(nil, b[wire.HeaderLen:], 3); err != nil || !reflect.DeepEqual(got, refs) {
		t.Fatalf("ParseRefs limit 3 of 3: %+v, %v", got, err)
	}
}

// FuzzRefs decodes random Watch payloads: no panic, errors are of the
// known kinds, and what decodes re-encodes to the same bytes.
func FuzzRefs(f *testing.F) {
	for _, v := range loadGaps(f).Frames {
		if v.Type == "watch" || v.Type == "gone" {
			f.Add(unhex(v.Hex)[wire.HeaderLen:])
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		refs, err := wire.ParseRefs(nil, p, 4096)
		if err != nil {
			if !errors.Is(err, wire.ErrTruncated) && !errors.Is(err, wire.ErrBadRef) && !errors.Is(err, wire.ErrTooMany) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again := wire.AppendRefs(nil, wire.TypeWatch, refs)
		if !bytes.Equal(again[wire.HeaderLen:], p) {
			t.Fatalf("re-encoded %x, want %x", again[wire.HeaderLen:], p)
		}
	})
}
