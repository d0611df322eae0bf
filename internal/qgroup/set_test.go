package qgroup

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"workers", true},
		{"a", true},
		{"A.b_c-9", true},
		{strings.Repeat("g", 64), true},
		{"", false},
		{strings.Repeat("g", 65), false},
		{"a b", false},
		{"é", false},
		{"a/b", false},
	} {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, not ErrBadName", tt.name, err)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	t.Parallel()
	set := New[string]()
	if err := set.Join("a", 1, "g", "x"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		desc          string
		s             string
		sid           uint32
		name, pattern string
		want          string
	}{
		{"sid in use, same group", "a", 1, "g", "x", "sid already in use: 1"},
		{"sid in use, other group", "a", 1, "h", "y", "sid already in use: 1"},
		{"bad name", "a", 2, "g h", "x", `invalid queue group name "g h"`},
		{"bad pattern", "a", 2, "g", "(", "missing closing )"},
	} {
		err := set.Join(tt.s, tt.sid, tt.name, tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Join = %v, want an error containing %q", tt.desc, err, tt.want)
		}
	}
	// Failed joins left nothing behind.
	if n := set.Len(); n != 1 {
		t.Errorf("%d groups, want 1", n)
	}
	if m := set.Memberships("a"); len(m) != 1 {
		t.Errorf("memberships of a: %v", m)
	}
	// Another member may use the same sid.
	if err := set.Join("b", 1, "g", "x"); err != nil {
		t.Errorf("b joins with sid 1: %v", err)
	}
}

func names(gs []*Group[string]) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name+"/"+g.Pattern+":"+fmt.Sprint(g.Members()))
	}
	return out
}

func TestMembership(t *testing.T) {
	t.Parallel()
	set := New[string]()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(set.Join("a", 1, "g", "job"))
	must(set.Join("b", 7, "g", "job"))
	must(set.Join("a", 2, "g", "job")) // a is two members of g
	must(set.Join("c", 1, "g", "job|other"))
	must(set.Join("c", 2, "h", "job"))

	for _, tt := range []struct {
		event string
		want  []string
	}{
		{"job", []string{"g/job:[{a 1} {b 7} {a 2}]", "g/job|other:[{c 1}]", "h/job:[{c 2}]"}},
		{"other", []string{"g/job|other:[{c 1}]"}},
		{"jobs", nil},
	} {
		got := names(set.Match([]byte(tt.event)))
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %v, want %v", tt.event, got, tt.want)
		}
	}

	if k, ok := set.Leave("a", 1); !ok || k != (Key{"g", "job"}) {
		t.Errorf("Leave(a, 1) = %v, %v", k, ok)
	}
	if _, ok := set.Leave("a", 1); ok {
		t.Error("Leave(a, 1) twice succeeded")
	}
	if got := names(set.Match([]byte("other"))); len(got) != 1 {
		t.Errorf("Match(other) = %v", got)
	}
	if g := set.Group(Key{"g", "job"}); g == nil || fmt.Sprint(g.Members()) != "[{b 7} {a 2}]" {
		t.Errorf("group g/job after a left: %v", g)
	}
	left := set.LeaveAll("c")
	if want := map[uint32]Key{1: {"g", "job|other"}, 2: {"h", "job"}}; fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("LeaveAll(c) = %v, want %v", left, want)
	}
	// Groups without members are gone.
	if got := names(set.Match([]byte("other"))); got != nil {
		t.Errorf("Match(other) after c left = %v", got)
	}
	if set.Group(Key{"h", "job"}) != nil || set.Len() != 1 {
		t.Errorf("groups left: %v", names(set.Groups()))
	}
	if got := names(set.Groups()); !slices.Equal(got, []string{"g/job:[{b 7} {a 2}]"}) {
		t.Errorf("Groups() = %v", got)
	}
	if k, ok := set.Of("a", 2); !ok || k.Name != "g" {
		t.Errorf("Of(a, 2) = %v, %v", k, ok)
	}
	set.LeaveAll("a")
	set.LeaveAll("b")
	if set.Len() != 0 || set.Match([]byte("job")) != nil || set.LeaveAll("b") != nil {
		t.Error("set not empty after everyone left")
	}
}

// TestConcurrentJoinLeave races joins, leaves and matches (run with -race).
func TestConcurrentJoinLeave(t *testing.T) {
	t.Parallel()
	set := New[int]()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				sid := uint32(i)
				if err := set.Join(w, sid, "g", "e"); err != nil {
					t.Error(err)
					return
				}
				for _, g := range set.Match([]byte("e")) {
					g.Pick(func(int) bool { return true }, func(Member[int]) bool { return true })
				}
				if i%2 == 0 {
					set.Leave(w, sid)
				}
			}
			set.LeaveAll(w)
		})
	}
	wg.Wait()
	if set.Len() != 0 {
		t.Errorf("%d groups left", set.Len())
	}
}
