package qgroup

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// group returns a group whose members are the letters of members, sids 1…
func group(members string) *Group[string] {
	set := New[string]()
	for i, m := range members {
		if err := set.Join(string(m), uint32(i+1), "g", "e"); err != nil {
			panic(err)
		}
	}
	return set.Group(Key{"g", "e"})
}

func TestPick(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		desc    string
		members string
		full    string // members without room
		gone    string // members whose deliver fails
		picks   int
		want    string // the members that took the messages, in order; '-' for none
	}{
		{"round robin", "abc", "", "", 7, "abcabca"},
		{"one member", "a", "", "", 3, "aaa"},
		{"full member passed over: the next", "abc", "b", "", 6, "accacc"},
		{"two full", "abcd", "bd", "", 4, "acca"},
		{"all full: whose turn it is", "abc", "abc", "", 4, "abca"},
		{"going away: the next", "abc", "", "b", 6, "accacc"},
		{"full and going away: the full one", "abc", "a", "bc", 3, "aaa"},
		{"all going away", "ab", "", "ab", 2, "--"},
		{"no member", "", "", "", 2, "--"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g := group(tt.members)
			if g == nil {
				g = &Group[string]{}
			}
			var got strings.Builder
			for range tt.picks {
				m, ok := g.Pick(
					func(s string) bool { return !strings.Contains(tt.full, s) },
					func(m Member[string]) bool { return !strings.Contains(tt.gone, m.S) })
				switch {
				case !ok:
					got.WriteByte('-')
				case m.SID != uint32(strings.Index(tt.members, m.S)+1):
					t.Fatalf("member %s with sid %d", m.S, m.SID)
				default:
					got.WriteString(m.S)
				}
			}
			if got.String() != tt.want {
				t.Errorf("picks %q, want %q", got.String(), tt.want)
			}
		})
	}
}

// TestOffer: Offer tries members in Pick's order, each once without force,
// then, only if some were full and none took the message, all again with
// force; a member that took it ends the offer.
func TestOffer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		desc    string
		members string
		full    string // members answering Full without force
		gone    string // members answering Refused
		want    string // the offers of one message, in order: a letter, upper case with force
		took    string // the member that took it, "-" for none
	}{
		{"the first takes it", "abc", "", "", "a", "a"},
		{"full passed over", "abc", "a", "", "ab", "b"},
		{"gone passed over", "abc", "", "ab", "abc", "c"},
		{"all full: forced, in turn", "abc", "abc", "", "abcA", "a"},
		{"full and gone: the full one forced", "abc", "b", "ac", "abcAB", "b"},
		{"all gone: no force", "ab", "", "ab", "ab", "-"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g := group(tt.members)
			var offers strings.Builder
			m, ok := g.Offer(func(m Member[string], force bool) Outcome {
				if force {
					offers.WriteString(strings.ToUpper(m.S))
				} else {
					offers.WriteString(m.S)
				}
				switch {
				case strings.Contains(tt.gone, m.S):
					return Refused
				case !force && strings.Contains(tt.full, m.S):
					return Full
				}
				return Took
			})
			took := "-"
			if ok {
				took = m.S
			}
			if offers.String() != tt.want || took != tt.took {
				t.Errorf("offers %q, taken by %s; want %q, %s", offers.String(), took, tt.want, tt.took)
			}
		})
	}
}

// TestPickFair: with equal members, concurrent picks are shared exactly.
func TestPickFair(t *testing.T) {
	t.Parallel()
	for _, k := range []int{2, 3, 4, 7} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			t.Parallel()
			g := group("abcdefg"[:k])
			const n = 10_000
			var mu sync.Mutex
			counts := map[string]int{}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for range n/8 + w/7*(n%8) {
						m, ok := g.Pick(func(string) bool { return true }, func(Member[string]) bool { return true })
						if !ok {
							t.Error("no pick")
							return
						}
						mu.Lock()
						counts[m.S]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			total := 0
			for _, c := range counts {
				total += c
				if c < n/k || c > n/k+1 {
					t.Errorf("counts %v: not within one of %d", counts, n/k)
				}
			}
			if total != n || len(counts) != k {
				t.Errorf("counts %v: total %d over %d members", counts, total, len(counts))
			}
		})
	}
}
