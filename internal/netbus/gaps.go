package netbus

import (
	"iter"
	"time"
)

// gap is one missing data sequence of a stream: since when it is missing
// and how often it was NAKed.
type gap struct {
	since   time.Time
	lastNak time.Time
	naks    int
}

// gapSet is the missing sequences of one stream. Streams use it only
// through its methods, so its representation can change (ranges instead
// of one entry per sequence) without touching them.
type gapSet struct {
	m map[uint64]*gap
}

func newGapSet() gapSet { return gapSet{m: map[uint64]*gap{}} }

// len is the number of missing sequences.
func (gs *gapSet) len() int { return len(gs.m) }

// addRun marks first..last missing since now; nothing when first > last.
// last stays below ctrlBit (data sequences do), so q++ cannot wrap.
func (gs *gapSet) addRun(first, last uint64, now time.Time) {
	for q := first; q <= last; q++ {
		gs.m[q] = &gap{since: now}
	}
}

// take removes q, returning its gap if it was missing.
func (gs *gapSet) take(q uint64) (*gap, bool) {
	g, ok := gs.m[q]
	if ok {
		delete(gs.m, q)
	}
	return g, ok
}

// remove forgets q.
func (gs *gapSet) remove(q uint64) { delete(gs.m, q) }

// all yields the missing sequences, in no order. The loop body may remove
// the sequence it is given.
func (gs *gapSet) all() iter.Seq2[uint64, *gap] {
	return func(yield func(uint64, *gap) bool) {
		for q, g := range gs.m {
			if !yield(q, g) {
				return
			}
		}
	}
}
