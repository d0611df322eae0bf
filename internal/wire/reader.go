package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// bigChunk is how much of a frame larger than the Reader's buffer is read
// (and allocated) at a time.
const bigChunk = 1 << 20

// Frame is one frame read by a Reader. Its slices alias the Reader's
// buffer and are valid only until the next call to Next.
type Frame struct {
	Type    byte
	Payload []byte // the bytes after the type byte
	Raw     []byte // the whole frame, length prefix included, for forwarding
}

// Reader reads frames from a stream. Frames that fit in its buffer are
// returned without copying; larger ones are read into a separate buffer
// that is kept for reuse only while it stays small.
type Reader struct {
	br  *bufio.Reader
	max int
	big []byte

	// A growing Reader's (grow.go): its source, the size of its buffer
	// once it has met a large frame, and whether it has just met one.
	src     io.Reader
	large   int
	growing bool
}

// NewReader returns a Reader over br that rejects frames whose length
// field exceeds max.
func NewReader(br *bufio.Reader, max int) *Reader {
	return &Reader{br: br, max: max}
}

// SetMax changes the largest accepted frame length.
func (r *Reader) SetMax(max int) { r.max = max }

// Next reads the next frame. At a clean end of stream it returns io.EOF;
// a stream cut inside a frame gives io.ErrUnexpectedEOF. A length of zero
// or above the maximum gives an error wrapping ErrEmpty or ErrTooLarge;
// the stream cannot be resynchronised after that.
func (r *Reader) Next() (Frame, error) {
	if r.growing {
		r.grow()
	}
	// All that is buffered, in one Peek (which cannot fail for that
	// much): in a stream the whole frame usually is.
	win, _ := r.br.Peek(r.br.Buffered())
	if len(win) < LenSize {
		hdr, err := r.br.Peek(LenSize)
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		win, _ = r.br.Peek(r.br.Buffered())
	}
	n32 := binary.BigEndian.Uint32(win)
	switch {
	case n32 == 0:
		return Frame{}, ErrEmpty
	case uint64(n32) > uint64(r.max):
		return Frame{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, n32, r.max)
	}
	n := int(n32) // fits: n32 <= r.max
	total := LenSize + n
	if total > r.br.Size()>>3 && r.large > r.br.Size() {
		r.growing = true // from the next frame on (grow.go)
	}
	if total <= len(win) {
		// Discarding peeked bytes only moves bufio's read position: the
		// slices stay valid until the next read.
		r.br.Discard(total)
		return Frame{Type: win[LenSize], Payload: win[HeaderLen:total:total], Raw: win[:total:total]}, nil
	}
	if total <= r.br.Size() {
		raw, err := r.br.Peek(total)
		if err != nil {
			return Frame{}, unexpected(err)
		}
		// Discarding peeked bytes only moves bufio's read position: the
		// slices stay valid until the next read.
		r.br.Discard(total)
		return Frame{Type: raw[LenSize], Payload: raw[HeaderLen:total:total], Raw: raw[:total:total]}, nil
	}
	// Grow the buffer as the bytes arrive, not from the length field
	// alone: a peer announcing a huge frame and sending nothing must not
	// make us allocate it.
	raw := r.big[:0]
	for len(raw) < total {
		n := min(total-len(raw), bigChunk)
		if len(raw)+n > cap(raw) {
			// Double, up to the frame's size: the copies add up to
			// less than the frame, and no capacity is left over.
			raw = slices.Grow(raw, min(max(2*cap(raw), len(raw)+n), total)-len(raw))
		}
		raw = raw[:len(raw)+n]
		if _, err := io.ReadFull(r.br, raw[len(raw)-n:]); err != nil {
			return Frame{}, unexpected(err)
		}
	}
	r.big = raw
	if cap(r.big) > 4*r.br.Size() {
		r.big = nil // do not pin a huge buffer for one huge frame
	}
	return frameOf(raw), nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Ready reports whether a whole frame is buffered, so that the next call
// to Next will not block (or an error is already certain).
func (r *Reader) Ready() bool {
	n := r.br.Buffered()
	if n < LenSize {
		return false
	}
	hdr, _ := r.br.Peek(LenSize)
	size, _ := FrameLen(hdr)
	return size <= n
}
