package wire

import (
	"bufio"
	"io"
)

// A growing Reader (NewGrowingReader) reads through a bufio.Reader that it
// replaces with a larger one once a large frame has arrived: an agent's
// connection that gets only small messages keeps a small buffer, one that
// gets large messages reads many of them at a time. With 64 KiB, S4's
// subscriber read its 16 KiB messages three or four at a time and handed
// them to its handlers as many at a time: a read and a goroutine hand-off
// for each few messages.

// NewGrowingReader returns a Reader over src with a buffer of size bytes,
// replaced by one of large bytes once a frame larger than an eighth of
// size has arrived, that rejects frames whose length field exceeds max.
func NewGrowingReader(src io.Reader, size, large, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(src, size), src: src, large: large, max: max}
}

// grow replaces the buffer with a large one; what the old one holds is
// read first. Only between frames: those read from the old one alias it.
func (r *Reader) grow() {
	r.growing = false
	src := r.src
	if n := r.br.Buffered(); n > 0 {
		b, _ := r.br.Peek(n)
		// Taken from the old one: if it is src itself (a bufio.Reader as
		// large, which bufio.NewReaderSize returned as it was), what
		// follows is read from it once b is, not b again. b stays valid:
		// src is read only after it.
		r.br.Discard(n)
		src = &prefixReader{pre: b, src: r.src}
	}
	r.br = bufio.NewReaderSize(src, r.large)
}

// prefixReader reads pre, then src.
type prefixReader struct {
	pre []byte
	src io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) == 0 {
		return p.src.Read(b)
	}
	n := copy(b, p.pre)
	p.pre = p.pre[n:]
	return n, nil
}
