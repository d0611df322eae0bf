package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

func TestFrameLen(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		b    []byte
		n    int
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"3 bytes", []byte{0, 0, 1}, 0, false},
		{"zero length", []byte{0, 0, 0, 0}, wire.LenSize, true},
		{"prefix only", []byte{0, 0, 0, 9}, 13, true},
		{"prefix and more", []byte{0, 0, 1, 0, 5, 6}, wire.LenSize + 256, true},
		{"largest", []byte{0xff, 0xff, 0xff, 0xff}, min(wire.LenSize+math.MaxUint32, math.MaxInt), true},
		{"a whole ping", wire.AppendU64(nil, wire.TypePing, 1), wire.HeaderLen + 8, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := wire.FrameLen(tt.b)
			if n != tt.n || ok != tt.ok {
				t.Fatalf("FrameLen(%x) = %d, %v; want %d, %v", tt.b, n, ok, tt.n, tt.ok)
			}
		})
	}
}

// TestFrameLenOfAppended checks FrameLen against every Append function.
func TestFrameLenOfAppended(t *testing.T) {
	t.Parallel()
	for _, tc := range frameCases() {
		b := tc.append([]byte("x")) // not at the start of dst
		if n, ok := wire.FrameLen(b[1:]); !ok || n != len(b)-1 {
			t.Errorf("%s: FrameLen = %d, %v; the frame is %d bytes", tc.name, n, ok, len(b)-1)
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	ping := wire.AppendU64(nil, wire.TypePing, 7)
	for _, tt := range []struct {
		name string
		b    []byte
		ok   bool
		rest []byte
	}{
		{"empty", nil, false, nil},
		{"prefix only", ping[:wire.LenSize], false, nil},
		{"header only", ping[:wire.HeaderLen], false, nil},
		{"one byte short", ping[:len(ping)-1], false, nil},
		{"zero length", []byte{0, 0, 0, 0, wire.TypePing}, false, nil},
		{"length 1, no payload", []byte{0, 0, 0, 1, wire.TypePong}, true, nil},
		{"exactly one", ping, true, nil},
		{"one and more", append(bytes.Clone(ping), 1, 2), true, []byte{1, 2}},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xfc, 1, 2, 3}, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, rest, ok := wire.Split(tt.b)
			if ok != tt.ok || !bytes.Equal(rest, tt.rest) {
				t.Fatalf("Split(%x): ok %v, rest %x; want %v, %x", tt.b, ok, rest, tt.ok, tt.rest)
			}
			if !ok {
				if f.Raw != nil || f.Payload != nil || f.Type != 0 || rest != nil {
					t.Fatalf("Split(%x) failed but returned %+v, rest %x", tt.b, f, rest)
				}
				return
			}
			checkFrame(t, f, tt.b[:len(tt.b)-len(tt.rest)])
		})
	}
}

// checkFrame checks that f is the frame raw, its slices aliasing raw and
// capped so that appending to them cannot overwrite what follows.
func checkFrame(t *testing.T, f wire.Frame, raw []byte) {
	t.Helper()
	if !bytes.Equal(f.Raw, raw) || &f.Raw[0] != &raw[0] {
		t.Fatalf("Raw %x does not alias the frame %x", f.Raw, raw)
	}
	if f.Type != raw[wire.LenSize] || !bytes.Equal(f.Payload, raw[wire.HeaderLen:]) {
		t.Fatalf("Type %d, Payload %x do not match the frame %x", f.Type, f.Payload, raw)
	}
	if cap(f.Raw) != len(f.Raw) || cap(f.Payload) != len(f.Payload) {
		t.Fatalf("Raw or Payload not capped: cap %d/%d, len %d/%d", cap(f.Raw), cap(f.Payload), len(f.Raw), len(f.Payload))
	}
}

// TestFramesBatch appends every frame case to one batch and walks it.
func TestFramesBatch(t *testing.T) {
	t.Parallel()
	var batch []byte
	var want [][]byte
	for _, tc := range frameCases() {
		at := len(batch)
		batch = tc.append(batch)
		want = append(want, batch[at:])
	}
	for _, tail := range [][]byte{nil, {0}, {0, 0, 0, 0}, {0, 0, 0, 0, 1}, want[0][:len(want[0])-1]} {
		b := append(bytes.Clone(batch), tail...)
		i := 0
		for f := range wire.Frames(b) {
			if i == len(want) {
				t.Fatalf("tail %x: Frames yielded a frame past the last whole one: %x", tail, f.Raw)
			}
			checkFrame(t, f, b[len(batch)-len(bytes.Join(want[i:], nil)):][:len(want[i])])
			i++
		}
		if i != len(want) {
			t.Fatalf("tail %x: Frames yielded %d frames, want %d", tail, i, len(want))
		}
	}
}

func TestFramesStopsEarly(t *testing.T) {
	t.Parallel()
	var batch []byte
	for i := range 5 {
		batch = wire.AppendU64(batch, wire.TypePing, uint64(i))
	}
	n := 0
	for f := range wire.Frames(batch) {
		if v, _ := wire.ParseU64(f.Payload); v != uint64(n) {
			t.Fatalf("frame %d holds %d", n, v)
		}
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("broke after %d frames", n)
	}
}

// TestFramesAllocs asserts that walking a batch allocates nothing: the
// agent and the server do it on every write.
func TestFramesAllocs(t *testing.T) {
	var batch []byte
	for range 10 {
		batch = append(batch, msgFrame(128, 'x')...)
	}
	var n int
	allocs := testing.AllocsPerRun(1000, func() {
		n = 0
		for f := range wire.Frames(batch) {
			n += len(f.Raw)
		}
	})
	if n != len(batch) {
		t.Fatalf("walked %d of %d bytes", n, len(batch))
	}
	if allocs != 0 {
		t.Fatalf("Frames: %v allocs per walk, want 0", allocs)
	}
}

// FuzzFrames checks the properties of FrameLen, Split and Frames on any
// bytes: they never panic; Frames yields exactly what a Reader reads from
// the same bytes before its first error; the frames it yields are a
// prefix of the batch, each as long as its prefix announces; and what is
// left after them does not split.
func FuzzFrames(f *testing.F) {
	vf := loadVectors(f)
	var all []byte
	for _, v := range vf.Frames {
		b := unhex(v.Hex)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add(append(bytes.Clone(all), 0, 0, 0, 0, 1))
	f.Add(append(bytes.Clone(all), 0, 0, 0))
	f.Add(all[:len(all)-1])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, batch []byte) {
		rd := wire.NewReader(bufio.NewReaderSize(bytes.NewReader(batch), 64), math.MaxInt32)
		off := 0
		for fr := range wire.Frames(batch) {
			if n, ok := wire.FrameLen(batch[off:]); !ok || n != len(fr.Raw) {
				t.Fatalf("at %d: a %d-byte frame, FrameLen says %d, %v", off, len(fr.Raw), n, ok)
			}
			checkFrame(t, fr, batch[off:off+len(fr.Raw)])
			rf, err := rd.Next()
			if err != nil || !bytes.Equal(rf.Raw, fr.Raw) {
				t.Fatalf("at %d: Frames yields %x, the Reader %x, %v", off, fr.Raw, rf.Raw, err)
			}
			off += len(fr.Raw)
		}
		if n := wire.WholeLen(batch); n != off {
			t.Fatalf("WholeLen %d, Frames stopped at %d", n, off)
		}
		rest := batch[off:]
		if _, _, ok := wire.Split(rest); ok {
			t.Fatalf("Frames stopped at %d, but the rest %x splits", off, rest)
		}
		_, err := rd.Next()
		switch {
		case err == nil:
			t.Fatalf("the Reader reads a frame where Frames stopped, at %d", off)
		case len(rest) == 0 && err != io.EOF:
			t.Fatalf("at the end of the batch the Reader says %v", err)
		case len(rest) > 0 && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, wire.ErrEmpty) && !errors.Is(err, wire.ErrTooLarge):
			t.Fatalf("with %d bytes left the Reader says %v", len(rest), err)
		}
	})
}
