package qgroup

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/netcluster/netcluster/internal/router"
)

// Errors returned by Join, wrapped with detail.
var (
	// ErrBadName is returned for a group name that is not 1 to 64 letters,
	// digits, '.', '_' or '-'.
	ErrBadName = errors.New("invalid queue group name")
	// ErrSIDInUse is returned when a member joins with a sid it already
	// uses.
	ErrSIDInUse = errors.New("queue listener sid already in use")
)

// MaxNameLen is the longest group name.
const MaxNameLen = 64

// ValidName reports whether name may name a group: 1 to 64 of
// A-Z a-z 0-9 . _ -, the characters of agent ids. The error wraps
// ErrBadName and says what is wrong (NameProblem).
func ValidName(name string) error {
	if p := NameProblem(name); p != "" {
		return fmt.Errorf("%w %q: %s", ErrBadName, name, p)
	}
	return nil
}

// NameProblem returns what makes name invalid as a group name, or "".
func NameProblem(name string) string {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Sprintf("%d bytes; want 1 to %d letters, digits, '.', '_' or '-'", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("byte %q at %d; want letters, digits, '.', '_' or '-'", c, i)
		}
	}
	return ""
}

// Key identifies a group within a Set.
type Key struct {
	Name    string
	Pattern string
}

// Member is one membership: the member S and the sid it chose for it.
type Member[S comparable] struct {
	S   S
	SID uint32
}

// Group is the members of one group. Its methods are safe for concurrent
// use; Pick takes no lock.
type Group[S comparable] struct {
	Key
	members atomic.Pointer[[]Member[S]] // copy on write, in order of joining
	next    atomic.Uint64               // the turn: members[next % len]
}

// Members returns the group's members in the order they joined. The
// slice must not be modified.
func (g *Group[S]) Members() []Member[S] {
	if p := g.members.Load(); p != nil {
		return *p
	}
	return nil
}

// Set is the queue groups of one channel. Create one with New. All methods
// are safe for concurrent use; Match takes no lock when its answer is
// cached (see router.Index).
type Set[S comparable] struct {
	index  *router.Index[*Group[S]]
	ngroup atomic.Int32 // len(groups), for Match to skip an empty set

	mu     sync.Mutex
	groups map[Key]*Group[S]
	byS    map[S]map[uint32]*Group[S] // member → sid → its group
}

// New returns an empty Set.
func New[S comparable]() *Set[S] {
	return &Set[S]{
		index:  router.NewIndex[*Group[S]](),
		groups: make(map[Key]*Group[S]),
		byS:    make(map[S]map[uint32]*Group[S]),
	}
}

// Join makes (s, sid) a member of the group of that name and pattern,
// creating the group if it is new. It fails for an invalid name or
// pattern (the error of router.Compile), or a sid s already uses.
func (set *Set[S]) Join(s S, sid uint32, name, pattern string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	k := Key{Name: name, Pattern: pattern}
	set.mu.Lock()
	defer set.mu.Unlock()
	if _, ok := set.byS[s][sid]; ok {
		return fmt.Errorf("%w: %d", ErrSIDInUse, sid)
	}
	g := set.groups[k]
	if g == nil {
		g = &Group[S]{Key: k}
		// The index compiles the pattern; one Add per group, removed
		// with the group's last member.
		if err := set.index.Add(g, pattern); err != nil {
			return err
		}
		set.groups[k] = g
		set.ngroup.Add(1)
	}
	old := g.Members()
	members := append(slices.Clip(old), Member[S]{S: s, SID: sid})
	g.members.Store(&members)
	sids := set.byS[s]
	if sids == nil {
		sids = make(map[uint32]*Group[S])
		set.byS[s] = sids
	}
	sids[sid] = g
	return nil
}

// Leave ends the membership (s, sid). It returns the key of the group left
// and whether s had that sid.
func (set *Set[S]) Leave(s S, sid uint32) (Key, bool) {
	set.mu.Lock()
	defer set.mu.Unlock()
	g, ok := set.byS[s][sid]
	if !ok {
		return Key{}, false
	}
	delete(set.byS[s], sid)
	if len(set.byS[s]) == 0 {
		delete(set.byS, s)
	}
	set.remove(g, Member[S]{S: s, SID: sid})
	return g.Key, true
}

// LeaveAll ends every membership of s and returns, for each sid it had,
// the key of its group.
func (set *Set[S]) LeaveAll(s S) map[uint32]Key {
	set.mu.Lock()
	defer set.mu.Unlock()
	sids := set.byS[s]
	if len(sids) == 0 {
		return nil
	}
	delete(set.byS, s)
	out := make(map[uint32]Key, len(sids))
	for sid, g := range sids {
		set.remove(g, Member[S]{S: s, SID: sid})
		out[sid] = g.Key
	}
	return out
}

// remove takes m out of g, and g out of the set once it has no member.
// set.mu must be held.
func (set *Set[S]) remove(g *Group[S], m Member[S]) {
	members := slices.DeleteFunc(slices.Clone(g.Members()), func(x Member[S]) bool { return x == m })
	if len(members) == 0 {
		g.members.Store(nil)
		delete(set.groups, g.Key)
		set.ngroup.Add(-1)
		set.index.Remove(g, g.Pattern)
		return
	}
	g.members.Store(&members)
}

// Group returns the group of key k, or nil if it has no member.
func (set *Set[S]) Group(k Key) *Group[S] {
	set.mu.Lock()
	defer set.mu.Unlock()
	return set.groups[k]
}

// Of returns the key of the group of membership (s, sid).
func (set *Set[S]) Of(s S, sid uint32) (Key, bool) {
	set.mu.Lock()
	defer set.mu.Unlock()
	g, ok := set.byS[s][sid]
	if !ok {
		return Key{}, false
	}
	return g.Key, true
}

// Match returns the groups whose pattern matches event. The slice is
// shared and must not be modified.
func (set *Set[S]) Match(event []byte) []*Group[S] {
	if set.Empty() {
		return nil
	}
	return set.index.Match(event)
}

// MatchMemo is Match, answered from m when event is the last one m saw
// and the set has not changed since (router.Index.MatchMemo): a sender
// streaming one event keeps a Memo.
func (set *Set[S]) MatchMemo(event []byte, m *router.Memo[*Group[S]]) []*Group[S] {
	if set.Empty() {
		return nil
	}
	return set.index.MatchMemo(event, m)
}

// Empty reports whether the set has no group: the common case of a
// channel without queue groups, which routing skips at the cost of one
// atomic load.
func (set *Set[S]) Empty() bool { return set.ngroup.Load() == 0 }

// Groups returns every group, sorted by name then pattern.
func (set *Set[S]) Groups() []*Group[S] {
	set.mu.Lock()
	out := make([]*Group[S], 0, len(set.groups))
	for _, g := range set.groups {
		out = append(out, g)
	}
	set.mu.Unlock()
	slices.SortFunc(out, func(a, b *Group[S]) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Pattern, b.Pattern))
	})
	return out
}

// Memberships returns the sids of s with their groups' keys.
func (set *Set[S]) Memberships(s S) map[uint32]Key {
	set.mu.Lock()
	defer set.mu.Unlock()
	out := make(map[uint32]Key, len(set.byS[s]))
	for sid, g := range set.byS[s] {
		out[sid] = g.Key
	}
	return out
}

// Patterns returns the distinct patterns of the groups, sorted.
func (set *Set[S]) Patterns() []string {
	set.mu.Lock()
	seen := make(map[string]bool, len(set.groups))
	for k := range set.groups {
		seen[k.Pattern] = true
	}
	set.mu.Unlock()
	return slices.Sorted(maps.Keys(seen))
}

// Len returns the number of groups.
func (set *Set[S]) Len() int {
	set.mu.Lock()
	defer set.mu.Unlock()
	return len(set.groups)
}
