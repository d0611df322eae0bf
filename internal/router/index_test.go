package router

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
)

type sub struct {
	name     string
	patterns []string
}

func newTestIndex(t *testing.T, subs []sub, opts ...Option) *Index[string] {
	t.Helper()
	ix := NewIndex[string](opts...)
	for _, s := range subs {
		for _, p := range s.patterns {
			if err := ix.Add(s.name, p); err != nil {
				t.Fatalf("Add(%q, %q): %v", s.name, p, err)
			}
		}
	}
	return ix
}

func checkMatch(t *testing.T, ix *Index[string], event string, want []string) {
	t.Helper()
	if got := ix.Match([]byte(event)); !slices.Equal(got, want) {
		t.Errorf("Match(%q) = %q, want %q", event, got, want)
	}
}

func TestIndexMatch(t *testing.T) {
	t.Parallel()
	subs := []sub{
		{"logger", []string{"log", "log\\..*"}},
		{"all", []string{".*"}},
		{"ab", []string{"a|b"}},
		{"lit-a", []string{"a"}},
		{"both-a", []string{"a", "a|b", "[a-c]"}},
	}
	tests := []struct {
		event string
		want  []string
	}{
		{"log", []string{"logger", "all"}},
		{"logs", []string{"all"}},
		{"log.error", []string{"logger", "all"}},
		{"a", []string{"all", "ab", "lit-a", "both-a"}},
		{"b", []string{"all", "ab", "both-a"}},
		{"c", []string{"all", "both-a"}},
		{"ab", []string{"all"}},
		{"a\nb", nil},
	}
	ix := newTestIndex(t, subs)
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			checkMatch(t, ix, tt.event, tt.want) // a miss
			checkMatch(t, ix, tt.event, tt.want) // a hit
		})
	}
	if got := ix.Len(); got != len(subs) {
		t.Errorf("Len() = %d, want %d", got, len(subs))
	}
}

func TestIndexRefCount(t *testing.T) {
	t.Parallel()
	ix := NewIndex[string]()
	for range 2 {
		if err := ix.Add("s", "ev"); err != nil {
			t.Fatal(err)
		}
	}
	checkMatch(t, ix, "ev", []string{"s"})
	if !ix.Remove("s", "ev") {
		t.Fatal("first Remove = false")
	}
	checkMatch(t, ix, "ev", []string{"s"})
	if ix.Len() != 1 {
		t.Errorf("Len() = %d after one of two Removes, want 1", ix.Len())
	}
	if !ix.Remove("s", "ev") {
		t.Fatal("second Remove = false")
	}
	checkMatch(t, ix, "ev", nil)
	if ix.Remove("s", "ev") {
		t.Error("third Remove = true")
	}
	if ix.Len() != 0 {
		t.Errorf("Len() = %d, want 0", ix.Len())
	}
	if got := len(ix.entries) + len(ix.literals) + len(ix.regexps); got != 0 {
		t.Errorf("%d pattern entries left behind", got)
	}
}

func TestIndexRemove(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"s", []string{"a", "b.*"}}, {"t", []string{"a"}}})
	tests := []struct {
		s, pattern string
		want       bool
	}{
		{"s", "c", false},   // pattern nobody has
		{"u", "a", false},   // unknown subscriber
		{"t", "b.*", false}, // pattern someone else has
		{"s", "b.*", true},  //
		{"s", "b.*", false}, // already removed
		{"s", "a", true},    //
		{"t", "a", true},    //
		{"t", "a", false},   // subscriber gone
		{"s", "(invalid", false},
	}
	for _, tt := range tests {
		if got := ix.Remove(tt.s, tt.pattern); got != tt.want {
			t.Errorf("Remove(%q, %q) = %v, want %v", tt.s, tt.pattern, got, tt.want)
		}
	}
	if ix.Len() != 0 || len(ix.entries) != 0 || len(ix.regexps) != 0 || len(ix.literals) != 0 {
		t.Errorf("index not empty: %d subscribers, %d entries", ix.Len(), len(ix.entries))
	}
}

func TestIndexRemoveAll(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{
		{"s", []string{"a", "a", "b.*", ".*"}},
		{"t", []string{"a", "bx"}},
	})
	ix.RemoveAll("s")
	ix.RemoveAll("nobody")
	checkMatch(t, ix, "a", []string{"t"})
	checkMatch(t, ix, "bx", []string{"t"})
	checkMatch(t, ix, "by", nil)
	if got := ix.Patterns("s"); got != nil {
		t.Errorf("Patterns(s) = %q after RemoveAll", got)
	}
	if ix.Len() != 1 {
		t.Errorf("Len() = %d, want 1", ix.Len())
	}
	if len(ix.regexps) != 0 {
		t.Errorf("%d regexps left, want 0", len(ix.regexps))
	}
	// A subscriber that comes back is new: it goes after t.
	if err := ix.Add("s", "a"); err != nil {
		t.Fatal(err)
	}
	checkMatch(t, ix, "a", []string{"t", "s"})
}

func TestIndexAddInvalid(t *testing.T) {
	t.Parallel()
	ix := NewIndex[string]()
	for _, p := range []string{"", "a(", "\xff"} {
		if err := ix.Add("s", p); err == nil {
			t.Errorf("Add(%q) succeeded", p)
		}
	}
	if ix.Len() != 0 || ix.Patterns("s") != nil {
		t.Errorf("failed Adds left state: Len %d, Patterns %q", ix.Len(), ix.Patterns("s"))
	}
}

func TestIndexPatterns(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"s", []string{"z", "a.*", "m", "a.*"}}})
	want := []string{"a.*", "m", "z"}
	if got := ix.Patterns("s"); !slices.Equal(got, want) {
		t.Errorf("Patterns = %q, want %q", got, want)
	}
}

// TestIndexRefsInPlace walks a subscriber's counts through the pattern
// held in place and the map beside it: the first pattern removed while a
// second is held, a third taking the freed place, counts above 1 in
// either, and the map emptied before the place.
func TestIndexRefsInPlace(t *testing.T) {
	t.Parallel()
	ix := NewIndex[string]()
	add := func(p string) {
		t.Helper()
		if err := ix.Add("s", p); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(p string, want bool) {
		t.Helper()
		if got := ix.Remove("s", p); got != want {
			t.Fatalf("Remove(%q) = %v, want %v", p, got, want)
		}
	}
	patterns := func(want ...string) {
		t.Helper()
		if got := ix.Patterns("s"); !slices.Equal(got, want) {
			t.Fatalf("Patterns = %q, want %q", got, want)
		}
	}
	add("a")
	add("b")
	add("b")
	patterns("a", "b")
	remove("a", true) // the place is free, b stays in the map
	patterns("b")
	checkMatch(t, ix, "a", nil)
	add("c") // takes the place
	add("c")
	patterns("b", "c")
	remove("b", true)
	patterns("b", "c") // b was added twice
	remove("b", true)
	remove("b", false)
	patterns("c")
	checkMatch(t, ix, "b", nil)
	checkMatch(t, ix, "c", []string{"s"})
	remove("c", true)
	patterns("c")
	remove("c", true)
	if ix.Len() != 0 || ix.Patterns("s") != nil {
		t.Fatalf("subscriber left: Len %d, Patterns %q", ix.Len(), ix.Patterns("s"))
	}
	add("d")
	add("e")
	add("f")
	ix.RemoveAll("s")
	for _, ev := range []string{"d", "e", "f"} {
		checkMatch(t, ix, ev, nil)
	}
	if ix.Len() != 0 || len(ix.entries) != 0 {
		t.Fatalf("RemoveAll left %d subscribers, %d entries", ix.Len(), len(ix.entries))
	}
}

// TestIndexCacheInvalidation fails if a change does not drop cached answers,
// including cached "nobody listens" answers.
func TestIndexCacheInvalidation(t *testing.T) {
	t.Parallel()
	steps := []struct {
		do    func(ix *Index[string]) // nil: only check
		event string
		want  []string
	}{
		{nil, "a", nil},
		{func(ix *Index[string]) { ix.Add("s", "a") }, "a", []string{"s"}},
		{func(ix *Index[string]) { ix.Add("t", "[ab]") }, "a", []string{"s", "t"}},
		{nil, "b", []string{"t"}},
		{func(ix *Index[string]) { ix.Remove("s", "a") }, "a", []string{"t"}},
		{func(ix *Index[string]) { ix.Add("s", ".*") }, "b", []string{"t", "s"}},
		{func(ix *Index[string]) { ix.RemoveAll("t") }, "b", []string{"s"}},
		{func(ix *Index[string]) { ix.Remove("s", ".*") }, "b", nil},
		// Answers are shared by the set of matching patterns: a new
		// subscriber to a known pattern must not get the old answer.
		{func(ix *Index[string]) { ix.Add("u", "c.*") }, "c1", []string{"u"}},
		{func(ix *Index[string]) { ix.Add("v", "c.*") }, "c2", []string{"u", "v"}},
		{func(ix *Index[string]) { ix.Remove("u", "c.*") }, "c3", []string{"v"}},
	}
	ix := NewIndex[string]()
	for i, st := range steps {
		if st.do != nil {
			st.do(ix)
		}
		for range 2 {
			if got := ix.Match([]byte(st.event)); !slices.Equal(got, st.want) {
				t.Fatalf("step %d: Match(%q) = %q, want %q", i, st.event, got, st.want)
			}
		}
	}
}

// TestIndexSnapshot checks that answers are immutable: later changes and
// appends by the caller leave them, and the cache, alone.
func TestIndexSnapshot(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"s", []string{"e.*"}}, {"t", []string{"ev"}}})
	got := ix.Match([]byte("ev"))
	_ = append(got, "intruder")
	if again := ix.Match([]byte("ev")); !slices.Equal(again, []string{"s", "t"}) {
		t.Fatalf("append to an answer changed the cache: %q", again)
	}
	ix.RemoveAll("s")
	ix.Add("u", "ev")
	if !slices.Equal(got, []string{"s", "t"}) {
		t.Errorf("old answer changed to %q", got)
	}
	checkMatch(t, ix, "ev", []string{"t", "u"})
}

func TestIndexCacheBound(t *testing.T) {
	t.Parallel()
	const size = 8
	ix := newTestIndex(t, []sub{{"a", []string{"x.*"}}, {"b", []string{"y.*"}}}, WithCacheSize(size))
	var first []string
	for i := range 1000 {
		ev := "x" + strconv.Itoa(i)
		got := ix.Match([]byte(ev))
		if !slices.Equal(got, []string{"a"}) {
			t.Fatalf("Match(%q) = %q", ev, got)
		}
		if first == nil {
			first = got
		} else if &got[0] != &first[0] {
			t.Fatalf("Match(%q) did not share the answer of x0", ev)
		}
		ix.Match([]byte("y" + strconv.Itoa(i)))
		ix.Match([]byte("z" + strconv.Itoa(i)))
		ix.mu.RLock()
		nc, ns := len(ix.cache), len(ix.shared)
		ix.mu.RUnlock()
		if nc > size || ns > size {
			t.Fatalf("cache holds %d names and %d answers, bound %d", nc, ns, size)
		}
	}
}

func TestIndexCacheLongName(t *testing.T) { // not parallel: AllocsPerRun
	ix := newTestIndex(t, []sub{{"a", []string{".*"}}})
	long := make([]byte, MaxCachedEventLen+1)
	for i := range long {
		long[i] = 'x'
	}
	for range 2 {
		if got := ix.Match(long); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("Match(long) = %q", got)
		}
	}
	if _, ok := ix.cache[string(long)]; ok {
		t.Error("a name longer than MaxCachedEventLen was cached")
	}
	if n := testing.AllocsPerRun(100, func() { ix.Match(long) }); n != 0 {
		t.Errorf("Match(long) allocates %v times, want 0: its answer is not shared", n)
	}
	ix.Match(long[:MaxCachedEventLen])
	if _, ok := ix.cache[string(long[:MaxCachedEventLen])]; !ok {
		t.Error("a name of MaxCachedEventLen bytes was not cached")
	}
}

func TestIndexCacheDisabled(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"a", []string{"x"}}, {"b", []string{"x|y"}}}, WithCacheSize(0))
	for range 2 {
		checkMatch(t, ix, "x", []string{"a", "b"})
		checkMatch(t, ix, "y", []string{"b"})
	}
	if len(ix.cache) != 0 || len(ix.shared) != 0 {
		t.Errorf("disabled cache holds %d names", len(ix.cache))
	}
}

func TestIndexMatchAllocs(t *testing.T) {
	ix := newTestIndex(t, []sub{{"a", []string{"chat.room"}}, {"b", []string{"chat\\..*"}}, {"c", []string{"x|y"}}})
	for _, ev := range []string{"chat.room", "chat.lobby", "nobody"} {
		event := []byte(ev)
		ix.Match(event) // fill the cache
		if n := testing.AllocsPerRun(1000, func() { ix.Match(event) }); n != 0 {
			t.Errorf("Match(%q) cache hit allocates %v times, want 0", ev, n)
		}
	}
}

// TestIndexConcurrent runs Match against Add, Remove and RemoveAll; run it
// with -race. A subscriber that never changes must be in every answer.
func TestIndexConcurrent(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"stable", []string{"ev.*"}}}, WithCacheSize(64))
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		writers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := fmt.Sprintf("w%d-%d", w, r.IntN(8))
				p := []string{"ev1", "ev[0-9]", ".*", "ev" + strconv.Itoa(r.IntN(100))}[r.IntN(4)]
				switch r.IntN(3) {
				case 0, 1:
					if err := ix.Add(s, p); err != nil {
						t.Error(err)
						return
					}
				case 2:
					ix.Remove(s, p)
				}
				if i%50 == 0 {
					ix.RemoveAll(s)
				}
			}
		})
	}
	for m := range 4 {
		readers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(m), 2))
			for range 20000 {
				ev := "ev" + strconv.Itoa(r.IntN(200))
				got := ix.Match([]byte(ev))
				if !slices.Contains(got, "stable") {
					t.Errorf("Match(%q) = %q lacks the stable subscriber", ev, got)
					return
				}
				seen := make(map[string]bool, len(got))
				for _, s := range got {
					if seen[s] {
						t.Errorf("Match(%q) = %q has duplicates", ev, got)
						return
					}
					seen[s] = true
				}
				ix.Patterns("stable")
				ix.Len()
			}
		})
	}
	readers.Wait()
	close(stop)
	writers.Wait()
}

// TestIndexModel applies random changes to an Index and to a plain model of
// it, and checks after each change that Match agrees with the model on
// every event name, whether answered from the cache or not.
func TestIndexModel(t *testing.T) {
	t.Parallel()
	patterns := []string{
		"a", "ab", "(a)", `a\.b`, "a[.]b", "a.b", "a.", ".b", "..", "é.",
		"x.y.z", `x\.y.z`, ".*", "(?s).*", "a|b", "a.*", "[ab]+",
	}
	events := []string{
		"a", "b", "ab", "a.b", "axb", "a\nb", "é1", "éé", "x.y.z", "xqyqz",
		"x.yqz", "..", "a\n", "aa", "\xffb", "abab",
	}
	refs := make(map[string]*regexp.Regexp)
	for _, p := range patterns {
		refs[p] = regexp.MustCompile(`^(?:` + p + `)$`)
	}
	type modelSub struct {
		name string
		refs map[string]int
	}
	var model []*modelSub // in order of arrival
	find := func(name string) (int, *modelSub) {
		for i, ms := range model {
			if ms.name == name {
				return i, ms
			}
		}
		return -1, nil
	}
	want := func(event string) []string {
		var out []string
		for _, ms := range model {
			for p := range ms.refs {
				if refs[p].MatchString(event) {
					out = append(out, ms.name)
					break
				}
			}
		}
		return out
	}

	for _, cacheSize := range []int{0, 4, DefaultCacheSize} {
		t.Run(fmt.Sprint("cache", cacheSize), func(t *testing.T) {
			model = nil
			ix := NewIndex[string](WithCacheSize(cacheSize))
			r := rand.New(rand.NewPCG(uint64(cacheSize), 3))
			for step := range 3000 {
				name := "s" + strconv.Itoa(r.IntN(6))
				p := patterns[r.IntN(len(patterns))]
				i, ms := find(name)
				var op string
				switch r.IntN(8) {
				case 0, 1, 2, 3:
					op = "Add"
					if err := ix.Add(name, p); err != nil {
						t.Fatal(err)
					}
					if ms == nil {
						ms = &modelSub{name: name, refs: make(map[string]int)}
						model = append(model, ms)
					}
					ms.refs[p]++
				case 4, 5, 6:
					op = "Remove"
					had := ms != nil && ms.refs[p] > 0
					if got := ix.Remove(name, p); got != had {
						t.Fatalf("step %d: Remove(%q, %q) = %v, want %v", step, name, p, got, had)
					}
					if had {
						if ms.refs[p]--; ms.refs[p] == 0 {
							delete(ms.refs, p)
						}
						if len(ms.refs) == 0 {
							model = slices.Delete(model, i, i+1)
						}
					}
				case 7:
					op = "RemoveAll"
					ix.RemoveAll(name)
					if ms != nil {
						model = slices.Delete(model, i, i+1)
					}
				}
				for _, ev := range events {
					for range 2 { // a miss, then perhaps a hit
						if got, want := ix.Match([]byte(ev)), want(ev); !slices.Equal(got, want) {
							t.Fatalf("step %d, after %s(%q, %q): Match(%q) = %q, want %q",
								step, op, name, p, ev, got, want)
						}
					}
				}
				if ix.Len() != len(model) {
					t.Fatalf("step %d: Len() = %d, want %d", step, ix.Len(), len(model))
				}
			}
		})
	}
}

// TestIndexInvalidateSelectively checks that a change to a literal or
// template pattern keeps the cached answers it cannot affect.
func TestIndexInvalidateSelectively(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"s", []string{"other", "a.b"}}})
	cached := func(name string) bool {
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		_, ok := ix.cache[name]
		return ok
	}
	for _, ev := range []string{"other", "axb", "lit", "zzz"} {
		ix.Match([]byte(ev))
	}
	ix.Add("t", "lit")
	if cached("lit") || !cached("other") || !cached("axb") || !cached("zzz") {
		t.Error("adding a literal dropped the wrong names")
	}
	checkMatch(t, ix, "lit", []string{"t"})
	ix.Add("t", "a.b")
	if cached("axb") || !cached("other") || !cached("lit") || !cached("zzz") {
		t.Error("adding a template dropped the wrong names")
	}
	checkMatch(t, ix, "axb", []string{"s", "t"})
	ix.Add("t", "z+")
	if cached("other") || cached("zzz") {
		t.Error("adding a regexp kept cached names")
	}
	checkMatch(t, ix, "zzz", []string{"t"})
}

// TestIndexChangeDuringMiss checks that a Match that computed its answer
// before a change does not cache it.
func TestIndexChangeDuringMiss(t *testing.T) {
	t.Parallel()
	for _, pattern := range []string{"ev", "e.", "e.*"} {
		t.Run(pattern, func(t *testing.T) {
			ix := newTestIndex(t, []sub{{"s", []string{"other"}}})
			ix.testHookMiss = func() {
				ix.testHookMiss = nil
				if err := ix.Add("t", pattern); err != nil {
					t.Error(err)
				}
			}
			checkMatch(t, ix, "ev", nil) // answered before the Add
			checkMatch(t, ix, "ev", []string{"t"})
		})
	}
}

// TestIndexView checks the lock-free copy of the cache: published once
// Match calls have missed it often enough, and dropped by every change.
func TestIndexView(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, []sub{{"s", []string{"a", "b.*"}}})
	inView := func(name string) bool {
		v := ix.view.Load()
		if v == nil {
			return false
		}
		_, ok := (*v)[name]
		return ok
	}
	names := []string{"a", "bx", "c", "d"}
	for range 3 {
		for _, name := range names {
			ix.Match([]byte(name))
		}
	}
	for _, name := range names {
		if !inView(name) {
			t.Errorf("%q not in the view after repeated Matches", name)
		}
	}
	ix.Add("t", "zz")
	if ix.view.Load() != nil {
		t.Error("the view survived a change")
	}
	checkMatch(t, ix, "a", []string{"s"})
}

func TestOnChangeAndSources(t *testing.T) {
	t.Parallel()
	calls := 0
	ix := NewIndex[int](WithOnChange(func() { calls++ }))
	ix.Add(1, "a")
	ix.Add(1, "a") // counted, nothing changes
	ix.Add(2, "b.*")
	if got := ix.Sources(); len(got) != 2 || got[0] != "a" || got[1] != "b.*" {
		t.Errorf("Sources = %q, want [a b.*]", got)
	}
	ix.Remove(1, "a") // one of two: nothing changes
	ix.Remove(1, "a")
	ix.RemoveAll(2)
	ix.RemoveAll(3)
	if calls != 4 {
		t.Errorf("onChange called %d times, want 4", calls)
	}
	if got := ix.Sources(); len(got) != 0 {
		t.Errorf("Sources = %q, want none", got)
	}
}
