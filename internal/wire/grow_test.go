package wire_test

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// randReader returns at most a random number of bytes a read, as a
// socket does.
type randReader struct {
	r   io.Reader
	rnd *rand.Rand
	max int
}

func (r *randReader) Read(p []byte) (int, error) {
	return r.r.Read(p[:min(len(p), 1+r.rnd.IntN(r.max))])
}

// A growing Reader reads every frame as it was sent through reads of every
// size, across its change of buffer (what the old one held comes first),
// with frames larger than either buffer among them.
func TestGrowingReaderRandom(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	var frames [][]byte
	for i := range 2000 {
		size := 15 + rnd.IntN(60)
		if i%10 == 0 {
			size = 15 + rnd.IntN(3000) // larger than an eighth of the buffer, and than the buffer, often
		}
		frames = append(frames, msgFrame(size, byte(i)))
	}
	for _, maxRead := range []int{1, 7, 100, 1000, 1 << 20} {
		src := &randReader{r: bytes.NewReader(streamOf(frames...)), rnd: rnd, max: maxRead}
		rd := wire.NewGrowingReader(src, 512, 2048, 1<<20)
		for i, want := range frames {
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("reads of up to %d bytes: frame %d: %v", maxRead, i, err)
			}
			if !bytes.Equal(f.Raw, want) || f.Type != want[4] || !bytes.Equal(f.Payload, want[5:]) {
				t.Fatalf("reads of up to %d bytes: frame %d differs", maxRead, i)
			}
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
		if n := wire.BufSize(rd); n != 2048 {
			t.Fatalf("after large frames the buffer is %d bytes, want 2048", n)
		}
	}
}

// A growing Reader keeps its small buffer for small frames, and takes the
// large one after the first frame larger than an eighth of the small one.
func TestGrowingReaderGrows(t *testing.T) {
	t.Parallel()
	var frames [][]byte
	for i := range 100 {
		frames = append(frames, msgFrame(100+i, 1))
	}
	rd := wire.NewGrowingReader(bytes.NewReader(streamOf(append(frames, msgFrame(1001, 2), msgFrame(100, 3))...)), 8000, 64000, 1<<20)
	for range frames {
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if n := wire.BufSize(rd); n != 8000 {
		t.Fatalf("after small frames the buffer is %d bytes, want 8000", n)
	}
	for range 2 {
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if n := wire.BufSize(rd); n != 64000 {
		t.Fatalf("after a frame of 1001 bytes the buffer is %d bytes, want 64000", n)
	}
}

// A growing Reader over a bufio.Reader at least as large as its buffer
// (which bufio.NewReaderSize returns as it is, buffer and all) reads what
// that one holds once when it grows, not again from it.
func TestGrowingReaderOverBufio(t *testing.T) {
	t.Parallel()
	frames := [][]byte{msgFrame(200, 1), msgFrame(20, 2), msgFrame(20, 3), msgFrame(300, 4)}
	src := bufio.NewReaderSize(bytes.NewReader(streamOf(frames...)), 1024)
	rd := wire.NewGrowingReader(src, 1024, 4096, 1<<20)
	for i, want := range frames {
		f, err := rd.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Raw, want) {
			t.Fatalf("frame %d differs: %d bytes of %d, type %d", i, len(f.Raw), len(want), f.Type)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}
