package router

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Index maps subscribers to the listener patterns they listen to and answers
// which subscribers listen to an event name.
//
// S identifies a subscriber, typically a pointer to a connection. A
// subscriber is in the index while it has at least one pattern. Create an
// Index with NewIndex; the zero value is not ready for use.
//
// All methods are safe for concurrent use. Match calls answered from the
// cache take no lock; the others, and Add and Remove, share a RWMutex.
type Index[S comparable] struct {
	// view is a copy of cache, read without locking. Changes to the index
	// drop it; Match publishes a new one once view misses have paid for
	// the copy.
	view      atomic.Pointer[map[string][]S]
	cacheSize int      // immutable
	onChange  func()   // immutable; nil or WithOnChange's
	_         [64]byte // keep the fields written below off view's cache line

	viewMisses atomic.Int64 // Match calls that missed view since it was published

	mu        sync.RWMutex
	gen       uint64                 // changes with every change of the index
	subs      map[S]*subscriber[S]   // every subscriber with at least one pattern
	entries   map[string]*entry[S]   // every pattern in use, by source
	literals  map[string][]*entry[S] // literal patterns by the name they match
	shapes    map[string]*shape[S]   // template patterns by template key
	shapeList []*shape[S]            // the values of shapes, in no particular order
	regexps   []*entry[S]            // every other pattern, in no particular order
	nextSeq   uint64                 // next subscriber.seq
	nextID    uint64                 // next entry.id
	cache     map[string][]S         // event name → answer
	shared    map[string][]S         // matchKey → answer, so equal answers share memory

	testHookMiss func() // if set, called by Match between computing and caching
}

// subscriber is one S in the index.
type subscriber[S comparable] struct {
	s    S
	seq  uint64 // order of arrival; answers are sorted by it
	refs refs   // pattern source → number of Adds not yet Removed
}

// refs counts the Adds not yet Removed of each pattern source of one
// subscriber. Most subscribers listen to one pattern: it is held in place,
// and a map is made only for a second one at the same time (a map of one
// string costs some 250 bytes, as much again as the subscriber).
type refs struct {
	one  string         // a pattern, if n > 0
	n    int            // the Adds of one not yet Removed; 0: one is unused
	more map[string]int // the other patterns, each with n > 0
}

// get returns the count of pattern, 0 if the subscriber does not have it.
func (r *refs) get(pattern string) int {
	if r.n > 0 && r.one == pattern {
		return r.n
	}
	return r.more[pattern]
}

// set makes the count of pattern n; 0 forgets it.
func (r *refs) set(pattern string, n int) {
	switch {
	case r.n > 0 && r.one == pattern:
		r.n = n
		if n == 0 {
			r.one = ""
		}
	case n == 0:
		delete(r.more, pattern)
	case r.more[pattern] > 0 || r.n > 0:
		if r.more == nil {
			r.more = make(map[string]int)
		}
		r.more[pattern] = n
	default:
		r.one, r.n = pattern, n
	}
}

// len returns the number of distinct patterns.
func (r *refs) len() int {
	if r.n > 0 {
		return 1 + len(r.more)
	}
	return len(r.more)
}

// patterns returns the distinct patterns, in no particular order.
func (r *refs) patterns() []string {
	out := make([]string, 0, r.len())
	if r.n > 0 {
		out = append(out, r.one)
	}
	for p := range r.more {
		out = append(out, p)
	}
	return out
}

// entry is one distinct pattern source with the subscribers listening to it.
type entry[S comparable] struct {
	pat *Pattern
	// id identifies the pair (pattern, subs): it changes whenever subs
	// does and is never reused, so equal matchKeys mean equal answers.
	id   uint64
	pos  int              // index in Index.regexps, for regexps only
	subs []*subscriber[S] // sorted by seq
}

// shape groups the template patterns that share segment lengths and
// wildcard runs, so that one mask of an event name and one map lookup find
// every template of the shape that matches.
type shape[S comparable] struct {
	tmpl    *template              // any template of this shape
	byText  map[string][]*entry[S] // Pattern.text → entries
	entries int                    // total length of the byText values
	pos     int                    // index in Index.shapeList
}

// NewIndex returns an empty Index.
func NewIndex[S comparable](opts ...Option) *Index[S] {
	o := options{cacheSize: DefaultCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	return &Index[S]{
		cacheSize: o.cacheSize,
		onChange:  o.onChange,
		subs:      make(map[S]*subscriber[S]),
		entries:   make(map[string]*entry[S]),
		literals:  make(map[string][]*entry[S]),
		shapes:    make(map[string]*shape[S]),
	}
}

// Add records that s listens to pattern. Adds are counted per (s, pattern):
// a pattern added twice stays until it is removed twice. Each distinct
// pattern is compiled once, however many subscribers use it. Add returns the
// error of [Compile] for an invalid pattern.
func (ix *Index[S]) Add(s S, pattern string) error {
	// Compile outside the lock: compiling a regexp takes far longer than a
	// Match, which the write lock would hold up.
	ix.mu.RLock()
	_, known := ix.entries[pattern]
	ix.mu.RUnlock()
	var p *Pattern
	if !known {
		var err error
		if p, err = Compile(pattern); err != nil {
			return err
		}
	}

	changed := false
	defer ix.notify(&changed)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	sub := ix.subs[s]
	if sub != nil {
		if n := sub.refs.get(pattern); n > 0 {
			sub.refs.set(pattern, n+1)
			return nil // no answer changes
		}
	}
	e := ix.entries[pattern]
	if e == nil {
		if p == nil { // the entry went away while unlocked
			var err error
			if p, err = Compile(pattern); err != nil {
				return err
			}
		}
		e = &entry[S]{pat: p}
		ix.entries[p.src] = e
		ix.insert(e)
	}
	if sub == nil {
		sub = &subscriber[S]{s: s, seq: ix.nextSeq}
		ix.nextSeq++
		ix.subs[s] = sub
	}
	sub.refs.set(e.pat.src, 1) // not pattern, which may share a larger buffer
	i, _ := slices.BinarySearchFunc(e.subs, sub.seq, bySeq)
	e.subs = slices.Insert(e.subs, i, sub)
	e.id = ix.nextID
	ix.nextID++
	ix.invalidate(e.pat)
	changed = true
	return nil
}

// notify calls onChange if *changed; deferred before the unlock, it runs
// after it.
func (ix *Index[S]) notify(changed *bool) {
	if *changed && ix.onChange != nil {
		ix.onChange()
	}
}

// Sources returns the distinct patterns of all subscribers, sorted.
func (ix *Index[S]) Sources() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]string, 0, len(ix.entries))
	for src := range ix.entries {
		out = append(out, src)
	}
	slices.Sort(out)
	return out
}

// Remove undoes one Add of pattern by s. It reports whether s had the
// pattern.
func (ix *Index[S]) Remove(s S, pattern string) bool {
	changed := false
	defer ix.notify(&changed)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	sub := ix.subs[s]
	if sub == nil {
		return false
	}
	switch n := sub.refs.get(pattern); n {
	case 0:
		return false
	case 1:
		sub.refs.set(pattern, 0)
	default:
		sub.refs.set(pattern, n-1)
		return true // no answer changes
	}
	if sub.refs.len() == 0 {
		delete(ix.subs, s)
	}
	ix.invalidate(ix.detach(sub, pattern))
	changed = true
	return true
}

// RemoveAll removes every pattern of s, however many times each was added.
func (ix *Index[S]) RemoveAll(s S) {
	changed := false
	defer ix.notify(&changed)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	sub := ix.subs[s]
	if sub == nil {
		return
	}
	changed = true
	delete(ix.subs, s)
	pats := make([]*Pattern, 0, sub.refs.len())
	if sub.refs.n > 0 {
		pats = append(pats, ix.detach(sub, sub.refs.one))
	}
	for pattern := range sub.refs.more {
		pats = append(pats, ix.detach(sub, pattern))
	}
	ix.invalidate(pats...)
}

// Patterns returns the distinct patterns of s, sorted.
func (ix *Index[S]) Patterns(s S) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sub := ix.subs[s]
	if sub == nil {
		return nil
	}
	out := sub.refs.patterns()
	slices.Sort(out)
	return out
}

// Listens reports whether s has at least one pattern: Patterns(s) is not
// empty, without building it (asked once per stored durable message).
func (ix *Index[S]) Listens(s S) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sub := ix.subs[s]
	return sub != nil && sub.refs.len() > 0
}

// Len returns the number of subscribers, those with at least one pattern.
func (ix *Index[S]) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.subs)
}

// Match returns the subscribers with at least one pattern matching event,
// each once, in the order in which they entered the index (a subscriber that
// lost all its patterns and came back counts as new). It returns nil if no
// one listens.
//
// The returned slice is shared with other callers and must not be modified;
// it stays valid, unchanged, after later changes to the index. A call
// answered from the cache does not allocate.
func (ix *Index[S]) Match(event []byte) []S {
	// The fast path takes no lock: a read lock, shared by every Match,
	// makes them contend for one cache line.
	if v := ix.view.Load(); v != nil {
		if subs, ok := (*v)[string(event)]; ok {
			return subs
		}
	}
	return ix.matchSlow(event)
}

// matchSlow is Match when the view does not know the event name.
func (ix *Index[S]) matchSlow(event []byte) []S {
	ix.mu.RLock()
	if subs, ok := ix.cache[string(event)]; ok {
		publish := ix.viewMisses.Add(1) >= int64(len(ix.cache))
		ix.mu.RUnlock()
		if publish {
			ix.mu.Lock()
			ix.publish()
			ix.mu.Unlock()
		}
		return subs
	}
	gen := ix.gen
	var matchedArr [16]*entry[S]
	matched := append(matchedArr[:0], ix.literals[string(event)]...)
	if len(ix.shapeList) > 0 {
		var maskArr [128]byte
		for _, sh := range ix.shapeList {
			if m, ok := sh.tmpl.mask(maskArr[:0], event); ok {
				matched = append(matched, sh.byText[string(m)]...)
			}
		}
	}
	for _, e := range ix.regexps {
		if e.pat.MatchBytes(event) {
			matched = append(matched, e)
		}
	}
	var keyArr [64]byte
	key := matchKey(keyArr[:0], matched)
	subs, isShared := ix.shared[string(key)]
	if !isShared && len(matched) > 0 {
		subs = merge(matched)
	}
	ix.mu.RUnlock()

	// A name too long to cache still shares its answer, so that routing
	// it does not allocate either.
	share := !isShared && len(matched) > 0
	long := len(event) > MaxCachedEventLen
	if ix.cacheSize == 0 || long && !share {
		return subs
	}
	if ix.testHookMiss != nil {
		ix.testHookMiss()
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.gen != gen {
		return subs // computed from an index that has since changed
	}
	if share {
		if ix.shared == nil || len(ix.shared) >= ix.cacheSize {
			// Cached answers keep their slices; only the sharing of
			// answers yet to be computed is lost.
			ix.shared = make(map[string][]S)
		}
		ix.shared[string(key)] = subs
	}
	if long {
		return subs
	}
	if ix.cache == nil {
		ix.cache = make(map[string][]S)
	} else if len(ix.cache) >= ix.cacheSize {
		// Evict an arbitrary entry. Names in use come back at once;
		// a flood of random names only churns the cache.
		for name := range ix.cache {
			delete(ix.cache, name)
			break
		}
	}
	ix.cache[string(event)] = subs
	ix.viewMisses.Add(1)
	ix.publish()
	return subs
}

// publish replaces the view with a copy of the cache once enough Match calls
// have missed the view to pay for the copy. ix.mu must be held for writing.
func (ix *Index[S]) publish() {
	if ix.viewMisses.Load() < int64(len(ix.cache)) {
		return
	}
	view := maps.Clone(ix.cache)
	ix.view.Store(&view)
	ix.viewMisses.Store(0)
}

// maxTemplateScan is the number of changed template patterns above which
// invalidate drops the whole cache rather than test each cached name.
const maxTemplateScan = 4

// invalidate drops the cached answers that a change to the subscribers of
// pats may have changed. ix.mu must be held for writing.
func (ix *Index[S]) invalidate(pats ...*Pattern) {
	ix.gen++ // Match calls in flight must not cache what they computed
	// Until the lock is released, Match calls keep using the old view:
	// they are concurrent with the change, so the old answers are right.
	defer ix.view.Store(nil)
	if len(ix.cache) == 0 {
		return
	}
	templates := 0
	for _, p := range pats {
		switch p.kind {
		case kindLiteral:
			delete(ix.cache, p.text)
		case kindTemplate:
			templates++
		default:
			templates = maxTemplateScan + 1
		}
	}
	switch {
	case templates == 0:
		return
	case templates > maxTemplateScan:
		ix.cache, ix.shared = nil, nil
		return
	}
	for name := range ix.cache {
		for _, p := range pats {
			if p.kind == kindTemplate && p.Match(name) {
				delete(ix.cache, name)
				break
			}
		}
	}
}

// detach removes sub from the entry of pattern, and the entry from the index
// once no one uses it. It returns the entry's pattern. ix.mu must be held
// for writing.
func (ix *Index[S]) detach(sub *subscriber[S], pattern string) *Pattern {
	e := ix.entries[pattern]
	if i, ok := slices.BinarySearchFunc(e.subs, sub.seq, bySeq); ok {
		e.subs = slices.Delete(e.subs, i, i+1)
	}
	e.id = ix.nextID
	ix.nextID++
	if len(e.subs) == 0 {
		delete(ix.entries, pattern)
		ix.delete(e)
	}
	return e.pat
}

// insert adds a new entry to the structures Match searches.
func (ix *Index[S]) insert(e *entry[S]) {
	p := e.pat
	switch p.kind {
	case kindLiteral:
		ix.literals[p.text] = append(ix.literals[p.text], e)
	case kindTemplate:
		sh := ix.shapes[p.tmpl.key]
		if sh == nil {
			sh = &shape[S]{tmpl: p.tmpl, byText: make(map[string][]*entry[S]), pos: len(ix.shapeList)}
			ix.shapes[p.tmpl.key] = sh
			ix.shapeList = append(ix.shapeList, sh)
		}
		sh.byText[p.text] = append(sh.byText[p.text], e)
		sh.entries++
	default:
		e.pos = len(ix.regexps)
		ix.regexps = append(ix.regexps, e)
	}
}

// delete undoes insert.
func (ix *Index[S]) delete(e *entry[S]) {
	p := e.pat
	switch p.kind {
	case kindLiteral:
		removeEntry(ix.literals, p.text, e)
	case kindTemplate:
		sh := ix.shapes[p.tmpl.key]
		removeEntry(sh.byText, p.text, e)
		if sh.entries--; sh.entries == 0 {
			delete(ix.shapes, p.tmpl.key)
			last := len(ix.shapeList) - 1
			ix.shapeList[sh.pos] = ix.shapeList[last]
			ix.shapeList[sh.pos].pos = sh.pos
			ix.shapeList[last] = nil
			ix.shapeList = ix.shapeList[:last]
		}
	default:
		last := len(ix.regexps) - 1
		ix.regexps[e.pos] = ix.regexps[last]
		ix.regexps[e.pos].pos = e.pos
		ix.regexps[last] = nil
		ix.regexps = ix.regexps[:last]
	}
}

// removeEntry removes e from m[key], and the key once its list is empty.
func removeEntry[S comparable](m map[string][]*entry[S], key string, e *entry[S]) {
	list := slices.DeleteFunc(m[key], func(x *entry[S]) bool { return x == e })
	if len(list) == 0 {
		delete(m, key)
	} else {
		m[key] = list
	}
}

func bySeq[S comparable](sub *subscriber[S], seq uint64) int {
	return cmp.Compare(sub.seq, seq)
}

// matchKey appends to dst a key identifying the matched entries. Match
// lists matched entries in an order that changes only when the index does,
// and entry ids change with their subscribers, so equal keys mean equal
// answers.
func matchKey[S comparable](dst []byte, matched []*entry[S]) []byte {
	for _, e := range matched {
		dst = binary.AppendUvarint(dst, e.id)
	}
	return dst
}

// merge returns the subscribers of the matched entries, deduplicated and in
// seq order. The result has no spare capacity, so a caller appending to it
// cannot write into memory shared with others.
func merge[S comparable](matched []*entry[S]) []S {
	var all []*subscriber[S]
	if len(matched) == 1 {
		all = matched[0].subs
	} else {
		n := 0
		for _, e := range matched {
			n += len(e.subs)
		}
		all = make([]*subscriber[S], 0, n)
		for _, e := range matched {
			all = append(all, e.subs...)
		}
		slices.SortFunc(all, func(a, b *subscriber[S]) int { return cmp.Compare(a.seq, b.seq) })
		all = slices.Compact(all)
	}
	out := make([]S, len(all))
	for i, sub := range all {
		out[i] = sub.s
	}
	return out
}
