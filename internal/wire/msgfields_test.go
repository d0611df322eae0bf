package wire

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

// slowMsgFields is msgFields by the decoder alone, field by field: the
// reference splitMsgFields must agree with.
func slowMsgFields(p []byte) (MsgView, error) {
	d := decoder{b: p}
	var v MsgView
	v.Flags = d.u8("flags")
	v.Channel = d.str8("channel")
	v.Agent = d.str8("agent")
	v.Node = d.str8("node")
	v.Event = d.str16("event")
	if d.err == nil {
		v.Data = d.b
	}
	return v, d.err
}

// splitMsgFields (the fast path of ParseMsg, ParseSeqMsg, ParseCall and
// ParseAnswer) accepts exactly the payloads the decoder accepts, and cuts
// them into the same fields with the same capacities: every prefix of
// real messages, and random bytes.
func TestSplitMsgFields(t *testing.T) {
	t.Parallel()
	var inputs [][]byte
	for _, m := range []Msg{
		{},
		{Flags: FlagJSON, Channel: "A", Agent: "agent-1", Event: "log", Data: bytes.Repeat([]byte("x"), 128)},
		{Channel: "chan", Agent: "a", Node: "0123456789abcdef", Event: "e", Data: []byte{0}},
		{Channel: string(bytes.Repeat([]byte("c"), 255)), Event: string(bytes.Repeat([]byte("e"), 300))},
	} {
		p := AppendMsg(nil, &m)[HeaderLen:]
		for n := range len(p) + 1 {
			inputs = append(inputs, p[:n])
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(6)) // small lengths, so that some parse
		}
		inputs = append(inputs, b)
	}
	parsed := 0
	for _, p := range inputs {
		want, err := slowMsgFields(p)
		got, ok := splitMsgFields(p)
		if ok != (err == nil) {
			t.Fatalf("%x: fast path ok %v, decoder error %v", p, ok, err)
		}
		if !ok {
			continue
		}
		parsed++
		for _, f := range [][2][]byte{{got.Channel, want.Channel}, {got.Agent, want.Agent}, {got.Node, want.Node}, {got.Event, want.Event}, {got.Data, want.Data}} {
			if !bytes.Equal(f[0], f[1]) || cap(f[0]) != cap(f[1]) || (f[0] == nil) != (f[1] == nil) {
				t.Fatalf("%x: fast path %+v, decoder %+v", p, got, want)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%x: fast path %+v, decoder %+v", p, got, want)
		}
	}
	if parsed < 1000 {
		t.Fatalf("only %d inputs parse: the test covers too little", parsed)
	}
}
