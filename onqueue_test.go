package netcluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
)

// tally counts, per member, the message numbers a queue listener got.
type tally struct {
	mu   sync.Mutex
	got  map[string][]int
	n    int
	more chan struct{}
}

func newTally() *tally { return &tally{got: map[string][]int{}, more: make(chan struct{}, 1)} }

func (ta *tally) handler(t testing.TB, member string) netcluster.Handler {
	return func(m *netcluster.Message) {
		var i int
		if err := m.Decode(&i); err != nil {
			t.Error(err)
			return
		}
		ta.mu.Lock()
		ta.got[member] = append(ta.got[member], i)
		ta.n++
		ta.mu.Unlock()
		select {
		case ta.more <- struct{}{}:
		default:
		}
	}
}

func (ta *tally) total() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.n
}

// waitTotal waits until the tally has n messages, then a moment longer
// to see any extra.
func (ta *tally) waitTotal(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for ta.total() < n {
		select {
		case <-ta.more:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", ta.total(), n)
		}
	}
}

// check verifies that the members together got 0…n-1 exactly once, and
// returns each member's count.
func (ta *tally) check(t testing.TB, n int) map[string]int {
	t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	seen := make([]string, n)
	counts := map[string]int{}
	for member, nums := range ta.got {
		counts[member] = len(nums)
		for _, i := range nums {
			if i < 0 || i >= n {
				t.Fatalf("%s got message %d of %d", member, i, n)
			}
			if seen[i] != "" {
				t.Fatalf("message %d went to %s and %s", i, seen[i], member)
			}
			seen[i] = member
		}
	}
	for i, m := range seen {
		if m == "" {
			t.Fatalf("message %d went to no member (counts %v)", i, counts)
		}
	}
	return counts
}

func emitN(t testing.TB, a *netcluster.Agent, event string, n int) {
	t.Helper()
	ctx := ctxT(t)
	for i := range n {
		if err := a.Emit(ctx, event, i); err != nil {
			t.Fatal(err)
		}
	}
}

func onQueue(t testing.TB, a *netcluster.Agent, pattern, group string, h netcluster.Handler) *netcluster.Listener {
	t.Helper()
	l, err := a.OnQueue(pattern, group, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestQueueExactlyOnce: each of 10,000 messages goes to exactly one member
// of each group, two groups on one pattern each get all, a group on a
// channel reached by propagation gets all, and plain listeners get all.
func TestQueueExactlyOnce(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		const n = 10_000
		g, h, gb := newTally(), newTally(), newTally()
		for i := range 3 {
			onQueue(t, e.connect(t, "A"), "job", "g", g.handler(t, fmt.Sprint("g", i)))
		}
		for i := range 2 {
			onQueue(t, e.connect(t, "A"), "job", "h", h.handler(t, fmt.Sprint("h", i)))
			onQueue(t, e.connect(t, "B"), "job", "g", gb.handler(t, fmt.Sprint("gb", i)))
		}
		plain := newTally()
		p := e.connect(t, "A")
		if _, err := p.On("job", plain.handler(t, "plain")); err != nil {
			t.Fatal(err)
		}
		p.Flush(ctxT(t))

		emitN(t, e.connect(t, "A"), "job", n)
		for name, ta := range map[string]*tally{"g": g, "h": h, "g on B": gb, "plain": plain} {
			ta.waitTotal(t, n)
			counts := ta.check(t, n)
			t.Logf("%s: %v", name, counts)
		}
		// Nothing more arrives.
		time.Sleep(50 * time.Millisecond)
		for _, ta := range []*tally{g, h, gb, plain} {
			if ta.total() != n {
				t.Fatalf("%d messages, want %d", ta.total(), n)
			}
		}
	})
}

// TestQueueFairness: equal members get equal shares, ±10%.
func TestQueueFairness(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		const n, k = 10_000, 4
		ta := newTally()
		for i := range k {
			onQueue(t, e.connect(t, "A"), "job", "g", ta.handler(t, fmt.Sprint("m", i)))
		}
		emitN(t, e.connect(t, "A"), "job", n)
		ta.waitTotal(t, n)
		counts := ta.check(t, n)
		for m, c := range counts {
			if c < n/k*9/10 || c > n/k*11/10 {
				t.Errorf("%s got %d of %d, want %d ± 10%% (counts %v)", m, c, n, n/k, counts)
			}
		}
		if len(counts) != k {
			t.Errorf("counts %v: want %d members", counts, k)
		}
	})
}

// TestQueueRequests: a request to a queue group is answered by one
// member; every request is answered once.
func TestQueueRequests(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		var mu sync.Mutex
		byMember := map[string]int{}
		for i := range 2 {
			a := e.connect(t, "A", netcluster.WithAgentID(fmt.Sprint("w", i)))
			onQueue(t, a, "price", "workers", func(m *netcluster.Message) {
				if !m.IsRequest() {
					t.Error("not a request")
				}
				mu.Lock()
				byMember[a.ID()]++
				mu.Unlock()
				m.Reply(context.Background(), decode[int](t, m)*2)
			})
		}
		req := e.connect(t, "A")
		for i := range 200 {
			got, err := req.Request(ctxT(t), "price", i)
			if err != nil {
				t.Fatal(err)
			}
			if v := decode[int](t, got); v != 2*i {
				t.Fatalf("request %d: reply %d", i, v)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if byMember["w0"]+byMember["w1"] != 200 || byMember["w0"] != 100 {
			t.Fatalf("requests per member %v, want 100 each", byMember)
		}
	})
}

// TestQueueOwnMessages: an agent's own queue listener may get its own
// messages and requests; its plain listeners get its events in memory.
func TestQueueOwnMessages(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		a := e.connect(t, "A")
		got := newRecorder()
		onQueue(t, a, "self", "solo", func(m *netcluster.Message) {
			got.handle(m)
			if m.IsRequest() {
				m.Reply(context.Background(), "me")
			}
		})
		if err := a.Emit(ctxT(t), "self", 1); err != nil {
			t.Fatal(err)
		}
		if m := got.waitN(t, 1)[0]; m.Local || m.Agent != a.ID() {
			t.Fatalf("own message: local %v agent %q", m.Local, m.Agent)
		}
		r, err := a.Request(ctxT(t), "self", nil)
		if err != nil || decode[string](t, r) != "me" {
			t.Fatalf("own request: %v", err)
		}
	})
}

// TestQueueOff: after Off, the remaining member gets everything.
func TestQueueOff(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		ta := newTally()
		gone := e.connect(t, "A")
		l := onQueue(t, gone, "job", "g", ta.handler(t, "gone"))
		onQueue(t, e.connect(t, "A"), "job", "g", ta.handler(t, "stays"))
		if !l.Off() || l.Off() {
			t.Fatal("Off twice")
		}
		if err := gone.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		emitN(t, e.connect(t, "A"), "job", 100)
		ta.waitTotal(t, 100)
		if c := ta.check(t, 100); c["stays"] != 100 {
			t.Fatalf("counts %v", c)
		}
	})
}

func TestOnQueueErrors(t *testing.T) {
	_, dir := startServer(t, busConfig(t, callTopology))
	a := connect(t, dir, "A")
	h := func(*netcluster.Message) {}
	for _, tt := range []struct {
		pattern, group string
		h              netcluster.Handler
		want           string
	}{
		{"job", "", h, "invalid queue group name"},
		{"job", "a b", h, `invalid queue group name "a b": byte ' ' at 1`},
		{"job", strings.Repeat("g", 65), h, "invalid queue group name"},
		{"(", "g", h, "missing closing )"},
		{"job", "g", nil, "nil handler"},
	} {
		_, err := a.OnQueue(tt.pattern, tt.group, tt.h)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OnQueue(%q, %q) = %v, want an error containing %q", tt.pattern, tt.group, err, tt.want)
		}
		if strings.HasPrefix(tt.want, "invalid queue group name") && !errors.Is(err, netcluster.ErrInvalidGroup) {
			t.Errorf("OnQueue(%q, %q) = %v, not ErrInvalidGroup", tt.pattern, tt.group, err)
		}
	}
}
