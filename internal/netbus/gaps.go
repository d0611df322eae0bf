package netbus

import (
	"slices"
	"sort"
	"time"
)

// gapRange is a run of consecutive missing data sequences of a stream
// that went missing together: since when, and how often they were NAKed.
type gapRange struct {
	first, last uint64
	since       time.Time
	lastNak     time.Time
	naks        int       // NAKs sent for it
	tries       int       // of which since a sequence of it last arrived: the retry limit counts these
	moved       time.Time // when a sequence of it last arrived (zero: none yet)
}

// rangeCost is what one range costs against Config.MaxMemory: the slice
// element and its share of slice growth.
const rangeCost = 96

// gapSet is a sorted set of disjoint ranges of missing sequences. Its cost
// is one range per run, whatever the run's length, so a heartbeat
// announcing a huge tail costs one range, not one entry per sequence.
// Every range a set holds is counted in *ranges (the Bus's total).
type gapSet struct {
	rs     []gapRange
	ranges *int
}

func newGapSet(ranges *int) gapSet { return gapSet{ranges: ranges} }

// empty reports whether no sequence is missing.
func (gs *gapSet) empty() bool { return len(gs.rs) == 0 }

// runs is the number of ranges held.
func (gs *gapSet) runs() int { return len(gs.rs) }

// count is the number of sequences held.
func (gs *gapSet) count() uint64 {
	var n uint64
	for _, r := range gs.rs {
		n += r.last - r.first + 1
	}
	return n
}

// addRun marks first..last missing since now; nothing when first > last.
// The run must not overlap one the set holds. Streams add runs above
// their top, so the common case appends.
func (gs *gapSet) addRun(first, last uint64, now time.Time) {
	if first > last {
		return
	}
	r := gapRange{first: first, last: last, since: now}
	if n := len(gs.rs); n == 0 || gs.rs[n-1].last < first {
		gs.rs = append(gs.rs, r)
	} else {
		i := sort.Search(n, func(i int) bool { return gs.rs[i].first > last })
		gs.rs = slices.Insert(gs.rs, i, r)
	}
	*gs.ranges++
}

// find returns the index of the range holding q, or -1.
func (gs *gapSet) find(q uint64) int {
	i := sort.Search(len(gs.rs), func(i int) bool { return gs.rs[i].last >= q })
	if i < len(gs.rs) && gs.rs[i].first <= q {
		return i
	}
	return -1
}

// splitCost reports whether taking q out would add a range (q strictly
// inside a run).
func (gs *gapSet) splitCost(q uint64) bool {
	i := gs.find(q)
	return i >= 0 && gs.rs[i].first < q && q < gs.rs[i].last
}

// take removes q, arrived at now, returning how often it was NAKed, if
// it was missing. The rest of q's range has its retries counted afresh,
// and is not NAKed again while its sequences keep arriving: the sender
// is answering.
func (gs *gapSet) take(q uint64, now time.Time) (naks int, ok bool) {
	i := gs.find(q)
	if i < 0 {
		return 0, false
	}
	r := &gs.rs[i]
	naks = r.naks
	r.tries, r.moved = 0, now
	switch {
	case r.first == r.last:
		gs.rs = slices.Delete(gs.rs, i, i+1)
		*gs.ranges--
	case q == r.first:
		r.first++
	case q == r.last:
		r.last--
	default:
		hi := *r
		hi.first = q + 1
		r.last = q - 1
		gs.rs = slices.Insert(gs.rs, i+1, hi)
		*gs.ranges++
	}
	return naks, true
}

// popFrom removes the run that starts at q, up to upto-1 at most, and
// returns its length (0: q is not the start of a run).
func (gs *gapSet) popFrom(q, upto uint64) uint64 {
	if len(gs.rs) == 0 || gs.rs[0].first != q || upto <= q {
		return 0
	}
	r := &gs.rs[0]
	if r.last < upto {
		n := r.last - r.first + 1
		gs.rs = slices.Delete(gs.rs, 0, 1)
		*gs.ranges--
		return n
	}
	n := upto - q
	r.first = upto
	return n
}

// moveBelow moves every sequence below upto into dst.
func (gs *gapSet) moveBelow(upto uint64, dst *gapSet) {
	n := 0
	for n < len(gs.rs) && gs.rs[n].first < upto {
		r := gs.rs[n]
		if r.last >= upto {
			dst.addRun(r.first, upto-1, r.since)
			gs.rs[n].first = upto
			break
		}
		dst.addRun(r.first, r.last, r.since)
		n++
	}
	if n > 0 {
		gs.rs = slices.Delete(gs.rs, 0, n)
		*gs.ranges -= n
	}
}

// moveAt moves range i into dst.
func (gs *gapSet) moveAt(i int, dst *gapSet) {
	r := gs.rs[i]
	gs.rs = slices.Delete(gs.rs, i, i+1)
	*gs.ranges--
	dst.addRun(r.first, r.last, r.since)
}

// clear drops every range.
func (gs *gapSet) clear() {
	*gs.ranges -= len(gs.rs)
	gs.rs = nil
}
