package wire

import (
	"encoding/binary"
	"iter"
	"math"
)

// LenSize is the size of a frame's length prefix: a big-endian uint32
// counting the bytes after it, the type byte and the payload. A frame's
// size is LenSize plus its length field; a length limit (MaxFrame, the
// Reader's max) bounds the length field, not the size.
const LenSize = 4

// FrameLen returns the size of the frame that starts b, length prefix
// included, as the prefix announces it; b may hold less of the frame. ok
// is false if b is shorter than the prefix. The size is checked against no
// limit: on 32-bit platforms one that does not fit an int reads as
// math.MaxInt, which no buffer holds.
func FrameLen(b []byte) (n int, ok bool) {
	if len(b) < LenSize {
		return 0, false
	}
	size := uint64(binary.BigEndian.Uint32(b)) + LenSize
	if size > math.MaxInt {
		return math.MaxInt, true
	}
	return int(size), true
}

// Split cuts the first frame off b: f is that frame, its slices aliasing
// b, and rest the bytes after it. ok is false, with f and rest zero, if b
// does not start with a whole frame: b is shorter than a header or than
// the frame its prefix announces, or the prefix announces an empty frame
// (no type byte).
func Split(b []byte) (f Frame, rest []byte, ok bool) {
	n, whole := FrameLen(b)
	if !whole || n < HeaderLen || n > len(b) {
		return Frame{}, nil, false
	}
	return frameOf(b[:n:n]), b[n:], true
}

// Frames returns an iterator over the whole frames that start batch, in
// order, as Split cuts them. It stops at the first bytes that are not a
// whole frame, so the frames it yields, laid end to end, are a prefix of
// batch; the Raw lengths it yields add up to where it stopped.
func Frames(batch []byte) iter.Seq[Frame] {
	return func(yield func(Frame) bool) {
		for {
			f, rest, ok := Split(batch)
			if !ok || !yield(f) {
				return
			}
			batch = rest
		}
	}
}

// WholeLen returns the length of the whole frames that start b: where
// Frames(b) stops. Of a batch of frames of which a write took n bytes,
// the frames from WholeLen(batch[:n]) on were not wholly written.
func WholeLen(b []byte) int {
	n := 0
	for f := range Frames(b) {
		n += len(f.Raw)
	}
	return n
}

// frameOf returns the Frame of raw, one whole frame of at least HeaderLen
// bytes.
func frameOf(raw []byte) Frame {
	return Frame{Type: raw[LenSize], Payload: raw[HeaderLen:len(raw):len(raw)], Raw: raw[:len(raw):len(raw)]}
}
