package router

import "bytes"

// Memo remembers the last answer of MatchMemo for one caller, which routes
// the same event name again and again (an agent emitting a stream). It is
// owned by one goroutine; its zero value is ready for use.
type Memo[S comparable] struct {
	view  *map[string][]S // the published view the answer came from
	event []byte
	subs  []S
}

// memoMaxEvent is the longest event name a Memo keeps a copy of.
const memoMaxEvent = 256

// MatchMemo is Match, answered from m when event is the name m remembers
// and the index's published view is still the one that answer came from:
// one comparison instead of a map lookup. Every change to the index drops
// the view, so an answer from m is never older than one Match would give.
func (ix *Index[S]) MatchMemo(event []byte, m *Memo[S]) []S {
	v := ix.view.Load()
	if v == nil {
		return ix.matchSlow(event)
	}
	if v == m.view && bytes.Equal(event, m.event) {
		return m.subs
	}
	subs, ok := (*v)[string(event)]
	if !ok {
		return ix.matchSlow(event)
	}
	if len(event) <= memoMaxEvent {
		m.view, m.event, m.subs = v, append(m.event[:0], event...), subs
	}
	return subs
}
