package netbus

// replayWindowSize is the width, in sequence numbers, of the sliding
// replay window kept per sender stream. It also caps how far a receiver's
// reorder buffer may span: a gap older than the window is declared lost,
// so a retransmission is never refused by the window it was meant to fill.
const replayWindowSize = 16384

// replayWindow remembers which of the last replayWindowSize sequence
// numbers of one stream were accepted. Bit s%size stands for s when
// top-size < s <= top. The zero value accepts everything from 1 on.
type replayWindow struct {
	top  uint64 // highest accepted sequence; 0 = none yet
	bits [replayWindowSize / 64]uint64
}

// replayVerdict says why check refused a sequence.
type replayVerdict uint8

const (
	replayOK   replayVerdict = iota
	replaySeen               // accepted before and still inside the window
	replayOld                // older than the window: cannot tell, refused
)

// check reports whether seq may be accepted, without changing the window.
// Call it after authentication and before acting on the datagram, then
// accept.
func (w *replayWindow) check(seq uint64) replayVerdict {
	switch {
	case seq > w.top:
		return replayOK
	case w.top-seq >= replayWindowSize:
		return replayOld
	case w.bits[(seq%replayWindowSize)/64]&(1<<(seq%64)) != 0:
		return replaySeen
	}
	return replayOK
}

// accept records seq; check(seq) must have returned replayOK.
func (w *replayWindow) accept(seq uint64) {
	if seq > w.top {
		if seq-w.top >= replayWindowSize {
			w.bits = [replayWindowSize / 64]uint64{}
		} else {
			for s := w.top + 1; s < seq; s++ {
				if s%64 == 0 && seq-s >= 64 { // clear whole words fast
					w.bits[(s%replayWindowSize)/64] = 0
					s += 63
					continue
				}
				w.bits[(s%replayWindowSize)/64] &^= 1 << (s % 64)
			}
			w.bits[(seq%replayWindowSize)/64] &^= 1 << (seq % 64)
		}
		w.top = seq
	}
	w.bits[(seq%replayWindowSize)/64] |= 1 << (seq % 64)
}
