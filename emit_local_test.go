package netcluster_test

import (
	"bytes"
	"testing"

	"github.com/netcluster/netcluster"
)

// TestEmitLocalFields checks what Emit delivers in memory to its own
// listeners while the event changes from one message to the next, and
// while listeners come and go: Emit remembers its last match and its last
// event name (emitMemo, recvAlloc.field), and neither may outlive a
// change.
func TestEmitLocalFields(t *testing.T) {
	a := connect(t, "", "A", inProcess(t))
	ctx := ctxT(t)
	r := listen(t, a, "^(a.*|end)$")
	data := []byte("x0")
	emit := func(event string, i byte) {
		t.Helper()
		data[1] = '0' + i
		if err := a.EmitRaw(ctx, event, data); err != nil {
			t.Fatal(err)
		}
	}
	emit("a1", 1)
	emit("a1", 2)
	emit("b", 3) // no listener yet
	emit("a2", 4)
	emit("a1", 5)
	b := listen(t, a, "b")
	emit("b", 6) // the same event as the last unmatched one: now matched
	l, err := a.On("a1", func(*netcluster.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	emit("a1", 7)
	l.Off()
	emit("a1", 8)
	emit("end", 9)

	type msg struct{ event, data string }
	var got []msg
	for _, m := range r.waitN(t, 7) {
		if !m.Local || m.Channel != "A" || m.Agent != a.ID() || m.JSON || m.Node != "" || m.Replayed || m.IsRequest() {
			t.Errorf("message %s %q: Local %v, Channel %q, Agent %q (want %q), JSON %v, Node %q, Replayed %v, request %v",
				m.Event, m.Data, m.Local, m.Channel, m.Agent, a.ID(), m.JSON, m.Node, m.Replayed, m.IsRequest())
		}
		got = append(got, msg{m.Event, string(m.Data)})
	}
	want := []msg{{"a1", "x1"}, {"a1", "x2"}, {"a2", "x4"}, {"a1", "x5"}, {"a1", "x7"}, {"a1", "x8"}, {"end", "x9"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: got %v, want %v", i, got[i], want[i])
		}
	}
	bm := b.waitN(t, 1)
	if len(bm) != 1 || bm[0].Event != "b" || !bytes.Equal(bm[0].Data, []byte("x6")) {
		t.Errorf("listener b got %d messages, the first %s %q; want one, b \"x6\"", len(bm), bm[0].Event, bm[0].Data)
	}
}
