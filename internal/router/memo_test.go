package router

import (
	"slices"
	"testing"
)

// MatchMemo gives Match's answer through every change to the index, for
// the remembered name and others, and allocates nothing once it remembers.
func TestMatchMemo(t *testing.T) {
	ix := NewIndex[string]()
	var m Memo[string]
	check := func(event string) {
		t.Helper()
		for range 3 { // the view is published after enough misses
			want := ix.Match([]byte(event))
			if got := ix.MatchMemo([]byte(event), &m); !slices.Equal(got, want) {
				t.Fatalf("MatchMemo(%q) = %q, Match %q", event, got, want)
			}
		}
	}
	check("ev")
	steps := []func() error{
		func() error { return ix.Add("a", "ev") },
		func() error { return ix.Add("b", "e.*") },
		func() error { ix.Remove("a", "ev"); return nil },
		func() error { return ix.Add("c", "other") },
		func() error { ix.Remove("b", "e.*"); return nil },
		func() error { return ix.Add("a", "ev") },
	}
	for i, step := range steps {
		// m remembers "ev" from before the change; the change drops the
		// view, and plain Matches publish a new one.
		if err := step(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			ix.Match([]byte("ev"))
			ix.Match([]byte("other"))
		}
		if got, want := ix.MatchMemo([]byte("ev"), &m), ix.Match([]byte("ev")); !slices.Equal(got, want) {
			t.Fatalf("step %d: %q, want %q", i, got, want)
		}
		check("other")
		check("ev")
	}
	ev := []byte("ev")
	ix.MatchMemo(ev, &m)
	if n := testing.AllocsPerRun(1000, func() { ix.MatchMemo(ev, &m) }); n != 0 {
		t.Fatalf("MatchMemo allocates %.1f times", n)
	}
}

func BenchmarkMatchMemo(b *testing.B) {
	ix := NewIndex[string]()
	for _, s := range []string{"a", "b", "c"} {
		if err := ix.Add(s, "ev|x.*"); err != nil {
			b.Fatal(err)
		}
	}
	ev := []byte("ev")
	for range 10 {
		ix.Match(ev)
	}
	var m Memo[string]
	b.Run("Match", func(b *testing.B) {
		for b.Loop() {
			ix.Match(ev)
		}
	})
	b.Run("MatchMemo", func(b *testing.B) {
		for b.Loop() {
			ix.MatchMemo(ev, &m)
		}
	})
}
