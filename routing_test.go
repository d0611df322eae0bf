package netcluster_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
)

// The seed README's sample, network off: A and B propagate to ".*".
const seedTopology = `{
  "channels": {
    "control": {"propagatetochannels": false},
    "A": {"propagatetochannels": ".*"},
    "B": {"propagatetochannels": ".*"},
  },
}`

// events returns "event@channel" for each message, in order, without the
// "end" markers.
func events(msgs []*netcluster.Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Event != "end" {
			out = append(out, m.Event+"@"+m.Channel)
		}
	}
	return out
}

// untilEnd waits for n "end" markers and returns everything before the last.
func untilEnd(t *testing.T, r *recorder, n int) []*netcluster.Message {
	t.Helper()
	for {
		got := r.waitN(t, 1)
		ends := 0
		for _, m := range got {
			if m.Event == "end" {
				ends++
			}
		}
		if ends >= n {
			return got
		}
		r.waitN(t, len(got)+1)
	}
}

func TestSeedTopologyExactlyOnce(t *testing.T) {
	_, dir := startServer(t, busConfig(t, seedTopology))
	a1 := connect(t, dir, "A")
	a2 := connect(t, dir, "A")
	b1 := connect(t, dir, "B")
	c1 := connect(t, dir, "control")
	recs := map[string]*recorder{}
	for name, ag := range map[string]*netcluster.Agent{"a1": a1, "a2": a2, "b1": b1, "c1": c1} {
		recs[name] = listen(t, ag, ".*")
	}

	ctx := ctxT(t)
	for _, e := range []struct {
		from *netcluster.Agent
		name string
	}{{a1, "fromA"}, {b1, "fromB"}, {c1, "fromControl"}} {
		if err := e.from.Emit(ctx, e.name, 1); err != nil {
			t.Fatal(err)
		}
		if err := e.from.Emit(ctx, "end", nil); err != nil {
			t.Fatal(err)
		}
	}

	// control propagates nowhere: c1's message reaches no one but c1.
	// A and B propagate everywhere: to each other and to control, and
	// ".*" matching their own name does not deliver twice.
	want := map[string][]string{
		"a1": {"fromA@A", "fromB@B"},
		"a2": {"fromA@A", "fromB@B"},
		"b1": {"fromA@A", "fromB@B"},
		"c1": {"fromA@A", "fromB@B", "fromControl@control"},
	}
	for name, r := range recs {
		got := untilEnd(t, r, 3-boolInt(name != "c1"))
		gotEvents := events(got)
		slices.Sort(gotEvents)
		if !slices.Equal(gotEvents, want[name]) {
			t.Errorf("%s got %v, want %v", name, gotEvents, want[name])
		}
		for _, m := range got {
			own := m.Agent == map[string]*netcluster.Agent{"a1": a1, "a2": a2, "b1": b1, "c1": c1}[name].ID()
			if own != m.Local {
				t.Errorf("%s: message %s from %s has Local=%v", name, m.Event, m.Agent, m.Local)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPropagationAnchoredAndOneHop(t *testing.T) {
	_, dir := startServer(t, busConfig(t, `{"channels": {
		"A": {"propagatetochannels": "B"},
		"B": {"propagatetochannels": "C"},
		"BB": {},
		"C": {},
	}}`))
	src := connect(t, dir, "A")
	recs := map[string]*recorder{}
	for _, ch := range []string{"A", "B", "BB", "C"} {
		recs[ch] = listen(t, connect(t, dir, ch), ".*")
	}
	ctx := ctxT(t)
	if err := src.Emit(ctx, "hop", "x"); err != nil {
		t.Fatal(err)
	}
	if err := src.Emit(ctx, "end", nil); err != nil {
		t.Fatal(err)
	}
	// A's own agent and B receive; BB does not match "B" (anchored), and
	// C is two hops away.
	for _, ch := range []string{"A", "B"} {
		if got := events(untilEnd(t, recs[ch], 1)); !slices.Equal(got, []string{"hop@A"}) {
			t.Errorf("channel %s got %v", ch, got)
		}
	}
	// The end marker did not reach BB or C either; to know they got
	// nothing, send a marker that does reach them, from their own channel.
	for _, ch := range []string{"BB", "C"} {
		probe := connect(t, dir, ch)
		if err := probe.Emit(ctx, "end", nil); err != nil {
			t.Fatal(err)
		}
		if got := events(untilEnd(t, recs[ch], 1)); len(got) != 0 {
			t.Errorf("channel %s got %v, want nothing", ch, got)
		}
	}
}

func TestServerSendsOnlyWhatAgentListensTo(t *testing.T) {
	srv, dir := startServer(t, nil)
	_ = srv
	src := connect(t, dir, "A")
	dst := connect(t, dir, "A")
	logs := listen(t, dst, "log|audit")
	ends := listen(t, dst, "end")
	ctx := ctxT(t)
	for _, ev := range []string{"log", "logs", "audit", "xlog", "audit2", "log"} {
		if err := src.Emit(ctx, ev, ev); err != nil {
			t.Fatal(err)
		}
	}
	src.Emit(ctx, "end", nil)
	ends.waitN(t, 1)
	if got, want := events(logs.all()), []string{"log@A", "audit@A", "log@A"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestOrderPerSender(t *testing.T) {
	_, dir := startServer(t, nil)
	const n = 10000
	senders := []*netcluster.Agent{connect(t, dir, "A"), connect(t, dir, "B")}
	dst := connect(t, dir, "A")
	r := listen(t, dst, "seq")
	ctx := ctxT(t)
	errc := make(chan error, len(senders))
	for _, s := range senders {
		go func() {
			for i := range n {
				if err := s.Emit(ctx, "seq", i); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range senders {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitN(t, 2*n)
	next := map[string]int{}
	for _, m := range got {
		var i int
		if err := m.Decode(&i); err != nil {
			t.Fatal(err)
		}
		if i != next[m.Agent] {
			t.Fatalf("from %s: got %d, want %d", m.Agent, i, next[m.Agent])
		}
		next[m.Agent]++
	}
	for _, s := range senders {
		if next[s.ID()] != n {
			t.Errorf("from %s: got %d messages, want %d", s.ID(), next[s.ID()], n)
		}
	}
}

func TestEmitErrors(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	ctx := ctxT(t)
	if err := a.Emit(ctx, "", 1); err == nil || !strings.Contains(err.Error(), "invalid event name") {
		t.Errorf("empty event: %v", err)
	}
	if err := a.Emit(ctx, "x", func() {}); err == nil || !strings.Contains(err.Error(), `emit "x"`) {
		t.Errorf("unmarshalable data: %v", err)
	}
	if err := a.EmitRaw(ctx, "big", make([]byte, 17<<20)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("17 MiB with the default 16 MiB limit: %v", err)
	}
	if _, err := a.On("a(", func(*netcluster.Message) {}); err == nil || !strings.Contains(err.Error(), `"a("`) {
		t.Errorf("invalid pattern: %v", err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Emit(ctx, "x", 1); err != netcluster.ErrClosed {
		t.Errorf("emit after close: %v", err)
	}
}

func TestConnectNoServerNamesPath(t *testing.T) {
	dir := testutil.ShortDir(t)
	_, err := netcluster.Connect(ctxT(t), "A", netcluster.WithSocketDir(dir))
	if err == nil || !strings.Contains(err.Error(), dir+"/netcluster-A") {
		t.Fatalf("got %v, want an error naming the socket path", err)
	}
	_, err = netcluster.Connect(ctxT(t), "bad/name", netcluster.WithSocketDir(dir))
	if err == nil || !strings.Contains(err.Error(), "bad/name") {
		t.Fatalf("got %v, want an error naming the channel", err)
	}
	_ = fmt.Sprint()
}
