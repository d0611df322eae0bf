package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/netcluster/netcluster/internal/wire"
)

// msgFrame returns a Msg frame of exactly size bytes (size >= 15).
func msgFrame(size int, fill byte) []byte {
	m := wire.Msg{Channel: "A", Agent: "a", Event: "e"}
	m.Data = bytes.Repeat([]byte{fill}, size-wire.MsgSize(&m))
	f := wire.AppendMsg(nil, &m)
	if len(f) != size {
		panic("msgFrame: wrong size")
	}
	return f
}

// readerKinds are the two kinds of Reader: over a bufio.Reader of size
// bytes, and growing (from size to 4*size bytes).
var readerKinds = []struct {
	name string
	new  func(src io.Reader, size, max int) *wire.Reader
}{
	{"bufio", func(src io.Reader, size, max int) *wire.Reader {
		return wire.NewReader(bufio.NewReaderSize(src, size), max)
	}},
	{"growing", func(src io.Reader, size, max int) *wire.Reader {
		return wire.NewGrowingReader(src, size, 4*size, max)
	}},
}

// streamOf concatenates frames.
func streamOf(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// readAll reads frames until an error and returns copies of their Raw
// bytes, checking that Type and Payload agree with Raw.
func readAll(t *testing.T, rd *wire.Reader) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	for {
		f, err := rd.Next()
		if err != nil {
			return got, err
		}
		if len(f.Raw) < wire.HeaderLen || f.Type != f.Raw[4] || !bytes.Equal(f.Payload, f.Raw[wire.HeaderLen:]) {
			t.Fatalf("frame %d: Type %d, Payload %x do not match Raw %x", len(got), f.Type, f.Payload, f.Raw)
		}
		if n := int(f.Raw[0])<<24 | int(f.Raw[1])<<16 | int(f.Raw[2])<<8 | int(f.Raw[3]); n != len(f.Raw)-4 {
			t.Fatalf("frame %d: Raw is %d bytes, length field %d", len(got), len(f.Raw), n)
		}
		got = append(got, bytes.Clone(f.Raw))
	}
}

func TestReaderStreams(t *testing.T) {
	t.Parallel()
	vf := loadVectors(t)
	var small [][]byte
	for _, v := range vf.Frames {
		small = append(small, unhex(v.Hex))
	}
	// bufio's smallest buffer is 16 bytes; 64 makes both paths common.
	var mixed [][]byte
	for i, size := range []int{15, 63, 64, 65, 200, 16, 64, 1000, 17, 5000, 64, 70_000, 15} {
		mixed = append(mixed, msgFrame(size, byte(i)))
	}
	typeOnly := []byte{0, 0, 0, 1, wire.TypePong} // length 1: a type and no payload
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"vectors", small},
		{"vectors three times", append(append(append([][]byte{}, small...), small...), small...)},
		{"mixed sizes around the buffer size", mixed},
		{"type byte only", [][]byte{typeOnly, typeOnly}},
		{"one frame", [][]byte{msgFrame(128, 1)}},
		{"empty stream", nil},
	}
	wrap := []struct {
		name string
		f    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte a read", iotest.OneByteReader},
		{"half a read", iotest.HalfReader},
		{"EOF with data", iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, w := range wrap {
			for _, size := range []int{16, 64, 4096} {
				for _, k := range readerKinds {
					t.Run(fmt.Sprintf("%s/%s/%s/buf%d", tt.name, w.name, k.name, size), func(t *testing.T) {
						t.Parallel()
						stream := streamOf(tt.frames...)
						rd := k.new(w.f(bytes.NewReader(stream)), size, 1<<20)
						got, err := readAll(t, rd)
						if err != io.EOF {
							t.Fatalf("after %d frames: %v, want io.EOF", len(got), err)
						}
						if len(got) != len(tt.frames) {
							t.Fatalf("read %d frames, want %d", len(got), len(tt.frames))
						}
						for i := range got {
							if !bytes.Equal(got[i], tt.frames[i]) {
								t.Fatalf("frame %d: Raw differs from the bytes sent (%d vs %d bytes)", i, len(got[i]), len(tt.frames[i]))
							}
						}
						if _, err := rd.Next(); err != io.EOF {
							t.Fatalf("Next after EOF: %v, want io.EOF", err)
						}
					})
				}
			}
		}
	}
}

// TestReaderBufferEdge reads frames of exactly the buffer size (read in
// place) and one byte more (copied), one after the other.
func TestReaderBufferEdge(t *testing.T) {
	t.Parallel()
	const size = 64
	frames := [][]byte{msgFrame(size, 1), msgFrame(size+1, 2), msgFrame(size, 3), msgFrame(size+1, 4), msgFrame(4*size+1, 5), msgFrame(size-1, 6)}
	for _, k := range readerKinds {
		rd := k.new(bytes.NewReader(streamOf(frames...)), size, 1<<20)
		readEdge(t, rd, frames)
	}
}

func readEdge(t *testing.T, rd *wire.Reader, frames [][]byte) {
	for i, want := range frames {
		f, err := rd.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Raw, want) {
			t.Fatalf("frame %d: Raw %x, want %x", i, f.Raw, want)
		}
		if cap(f.Raw) != len(f.Raw) || cap(f.Payload) != len(f.Payload) {
			t.Errorf("frame %d: slices are not capped: appending to them would overwrite the buffer", i)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	t.Parallel()
	good := msgFrame(40, 1)
	bigGood := msgFrame(300, 2) // larger than the 64-byte buffer
	header := func(n uint32, rest ...byte) []byte {
		return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, rest...)
	}
	tests := []struct {
		name   string
		stream []byte
		max    int
		frames int    // good frames before the error
		err    error  // errors.Is target
		msg    string // substring of the error text
	}{
		{"clean EOF", good, 1000, 1, io.EOF, ""},
		{"nothing at all", nil, 1000, 0, io.EOF, ""},
		{"zero length", header(0, 1, 2, 3), 1000, 0, wire.ErrEmpty, "empty frame"},
		{"zero length after a frame", streamOf(good, header(0)), 1000, 1, wire.ErrEmpty, ""},
		{"over max", header(1001, wire.TypeMsg), 1000, 0, wire.ErrTooLarge, "1001 bytes, the limit is 1000"},
		{"over max after a frame", streamOf(good, header(5000)), 1000, 1, wire.ErrTooLarge, "5000 bytes, the limit is 1000"},
		// Lengths of 2^31 and more: TestBugReaderLengthOverflow32.
		{"length field 2^31-1", header(0x7FFFFFFF), 1000, 0, wire.ErrTooLarge, "2147483647 bytes, the limit is 1000"},
		{"exactly max", header(300-4, bigGood[4:]...), 296, 1, io.EOF, ""},
		{"max plus one", bigGood, 295, 0, wire.ErrTooLarge, "296 bytes, the limit is 295"},
		{"cut in the header, 1 byte", streamOf(good, good[:1]), 1000, 1, io.ErrUnexpectedEOF, ""},
		{"cut in the header, 3 bytes", streamOf(good, good[:3]), 1000, 1, io.ErrUnexpectedEOF, ""},
		{"cut after the header", streamOf(good, good[:4]), 1000, 1, io.ErrUnexpectedEOF, ""},
		{"cut after the type", good[:5], 1000, 0, io.ErrUnexpectedEOF, ""},
		{"cut one byte short", good[:len(good)-1], 1000, 0, io.ErrUnexpectedEOF, ""},
		{"cut one byte short, large frame", streamOf(good, bigGood[:len(bigGood)-1]), 1000, 1, io.ErrUnexpectedEOF, ""},
		{"cut early, large frame", bigGood[:100], 1000, 0, io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		for _, k := range readerKinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				rd := k.new(bytes.NewReader(tt.stream), 64, tt.max)
				got, err := readAll(t, rd)
				if len(got) != tt.frames {
					t.Errorf("read %d frames before the error, want %d", len(got), tt.frames)
				}
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("err = %q, want it to contain %q", err, tt.msg)
				}
			})
		}
	}
}

// TestReaderPassesReadErrors checks that an error from the connection
// itself (a deadline, a reset) comes back as it is.
func TestReaderPassesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tt := range []struct {
		name   string
		prefix []byte
	}{
		{"before a frame", nil},
		{"inside a small frame", msgFrame(40, 1)[:20]},
		{"inside a large frame", msgFrame(300, 1)[:200]},
	} {
		for _, k := range readerKinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				r := io.MultiReader(bytes.NewReader(tt.prefix), iotest.ErrReader(boom))
				rd := k.new(r, 64, 1000)
				if _, err := rd.Next(); !errors.Is(err, boom) {
					t.Fatalf("err = %v, want %v", err, boom)
				}
			})
		}
	}
}

func TestReaderSetMax(t *testing.T) {
	t.Parallel()
	f := msgFrame(100, 1)
	rd := wire.NewReader(bufio.NewReader(bytes.NewReader(streamOf(f, f))), 1000)
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	rd.SetMax(50)
	if _, err := rd.Next(); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("after SetMax(50): %v, want ErrTooLarge", err)
	}
	rd.SetMax(96)
	if _, err := rd.Next(); err != nil {
		t.Fatalf("after SetMax(96): %v", err)
	}
}

// TestReaderLargeFrameValidUntilNext checks the copied path: a large frame
// stays intact until Next is called again.
func TestReaderLargeFrameValidUntilNext(t *testing.T) {
	t.Parallel()
	a, b := msgFrame(1000, 'a'), msgFrame(1000, 'b')
	rd := wire.NewReader(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(streamOf(a, b))), 64), 1<<20)
	f, err := rd.Next()
	if err != nil || !bytes.Equal(f.Raw, a) {
		t.Fatalf("first frame: %v", err)
	}
	f2, err := rd.Next()
	if err != nil || !bytes.Equal(f2.Raw, b) {
		t.Fatalf("second frame: %v", err)
	}
}

// cycleReader returns its data over and over, like a connection that never
// runs dry.
type cycleReader struct {
	data []byte
	off  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.data[c.off:])
		n += k
		c.off = (c.off + k) % len(c.data)
	}
	return n, nil
}

// TestReaderNextAllocs asserts the steady state of Reader.Next allocates
// nothing: frames that fit the buffer are returned in place, and the
// buffer for larger ones is reused (while it is at most four times the
// bufio size; beyond that each frame gets a new buffer, by design).
func TestReaderNextAllocs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		bufSize int
		frame   int
	}{
		{"128-byte frames, 32 KiB buffer", 32 << 10, 128},
		{"128-byte frames, 64-byte buffer (copied)", 64, 128},
		{"4 KiB frames, 1 KiB buffer (copied)", 1 << 10, 4 << 10},
	} {
		for _, k := range readerKinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				want := msgFrame(tt.frame, 7)
				rd := k.new(&cycleReader{data: want}, tt.bufSize, wire.DefaultMaxFrame)
				if _, err := rd.Next(); err != nil { // warm up
					t.Fatal(err)
				}
				var err error
				allocs := testing.AllocsPerRun(1000, func() {
					var f wire.Frame
					f, err = rd.Next()
					if err == nil && len(f.Raw) != len(want) {
						err = fmt.Errorf("frame of %d bytes", len(f.Raw))
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if allocs != 0 {
					t.Fatalf("Reader.Next: %v allocs/op, want 0", allocs)
				}
			})
		}
	}
}
