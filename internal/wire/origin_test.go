package wire

import (
	"bytes"
	"testing"
)

// ParseMsgFrom agrees with ParseMsg on every Msg of its origin, and
// refuses every other payload, whole or cut short.
func TestParseMsgFrom(t *testing.T) {
	origin := AppendOrigin(nil, "chan", "agent-1")
	msgs := []Msg{
		{Channel: "chan", Agent: "agent-1", Event: "ev", Data: []byte("data")},
		{Flags: FlagJSON, Channel: "chan", Agent: "agent-1", Event: "e.v.x", Data: []byte(`{}`)},
		{Channel: "chan", Agent: "agent-1", Event: "", Data: nil},
		{Channel: "chan", Agent: "agent-1", Event: "ev"},
	}
	for _, m := range msgs {
		p := AppendMsg(nil, &m)[HeaderLen:]
		want, err := ParseMsg(p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseMsgFrom(p, origin)
		if !ok {
			t.Fatalf("%+v: refused", m)
		}
		if got.Flags != want.Flags || !bytes.Equal(got.Channel, want.Channel) || !bytes.Equal(got.Agent, want.Agent) ||
			len(got.Node) != 0 || !bytes.Equal(got.Event, want.Event) || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("%+v: got %+v, want %+v", m, got, want)
		}
		if cap(got.Event) != len(got.Event) || cap(got.Agent) != len(got.Agent) {
			t.Fatalf("%+v: a field's capacity reaches past it", m)
		}
		for n := range len(p) - len(got.Data) {
			if _, ok := ParseMsgFrom(p[:n], origin); ok {
				t.Fatalf("%+v cut to %d bytes: accepted", m, n)
			}
		}
	}
	others := []Msg{
		{Channel: "chan", Agent: "agent-2", Event: "ev"},
		{Channel: "chan", Agent: "agent-", Event: "ev"},
		{Channel: "cha", Agent: "agent-1", Event: "ev"},
		{Channel: "chan", Agent: "agent-1", Node: "n", Event: "ev"},
	}
	for _, m := range others {
		if _, ok := ParseMsgFrom(AppendMsg(nil, &m)[HeaderLen:], origin); ok {
			t.Fatalf("%+v: accepted as from chan/agent-1", m)
		}
	}
}

func FuzzParseMsgFrom(f *testing.F) {
	f.Add(AppendMsg(nil, &Msg{Channel: "c", Agent: "a", Event: "e", Data: []byte("d")})[HeaderLen:])
	origin := AppendOrigin(nil, "c", "a")
	f.Fuzz(func(t *testing.T, p []byte) {
		got, ok := ParseMsgFrom(p, origin)
		want, err := ParseMsg(p)
		if ok != (err == nil && string(want.Channel) == "c" && string(want.Agent) == "a" && len(want.Node) == 0) {
			t.Fatalf("ok %v, ParseMsg %+v, %v", ok, want, err)
		}
		if ok && (!bytes.Equal(got.Event, want.Event) || !bytes.Equal(got.Data, want.Data) || got.Flags != want.Flags) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func BenchmarkParseMsgFrom(b *testing.B) {
	p := AppendMsg(nil, &Msg{Channel: "bench", Agent: "pub-1234", Event: "bench", Data: make([]byte, 128)})[HeaderLen:]
	origin := AppendOrigin(nil, "bench", "pub-1234")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseMsgFrom(p, origin); !ok {
			b.Fatal("refused")
		}
	}
}
