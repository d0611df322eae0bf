package netcluster

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestRecvRepeatedHeadersRandom: random runs of SeqMsg, Msg, replayed
// Msg, QueueMsg (of a Msg or a Call) and Call frames whose headers repeat
// or change in one field (flags, names, a node, events long enough not to
// be interned or remembered, data that starts with a header) give, through
// the reader's shared recvAlloc, the Messages that decoding each frame in
// full with an allocator of its own gives, and the same numbers dropped.
func TestRecvRepeatedHeadersRandom(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		recvRandomRun(t, seed)
	}
}

func recvRandomRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	channels := []string{"ch", "ci", "c"}
	agents := []string{"a1", "a2", "a11"}
	nodes := []string{"", "", "n1", "n2"}
	events := []string{"ev", "ew", "ev2", strings.Repeat("e", 300), strings.Repeat("e", 301), strings.Repeat("f", 600)}
	a := &Agent{}
	ref := &Agent{}
	var alloc recvAlloc
	seqs := map[string]uint64{}
	var last []byte // the last frame's bytes, for data that starts like them
	m := wire.Msg{Channel: "ch", Agent: "a1", Event: "ev"}
	for i := 0; i < 3000; i++ {
		// Change one field, or none.
		switch rng.IntN(8) {
		case 0:
			m.Channel = pick(channels)
		case 1:
			m.Agent = pick(agents)
		case 2:
			m.Node = pick(nodes)
		case 3:
			m.Event = pick(events)
		case 4:
			m.Flags ^= wire.FlagJSON
		}
		m.Data = fmt.Appendf(nil, "d%d", i)
		if rng.IntN(10) == 0 && len(last) > 0 {
			m.Data = append(bytes.Clone(last[rng.IntN(len(last)):]), m.Data...)
		}
		key := m.Channel + "/" + m.Agent
		var f []byte
		kind := rng.IntN(6)
		switch kind {
		case 0, 1: // SeqMsg, sometimes a number already received
			seqs[key]++
			seq := seqs[key]
			if rng.IntN(8) == 0 && seq > 1 {
				seq -= uint64(1 + rng.IntN(int(seq-1)))
				seqs[key]--
			}
			f = wire.AppendSeqMsg(nil, 3, seq, &m)
		case 2: // Msg
			f = wire.AppendMsg(nil, &m)
		case 3: // a replayed Msg
			r := m
			r.Flags |= wire.FlagReplayed
			f = wire.AppendMsg(nil, &r)
		case 4: // QueueMsg of a Msg or a Call
			if rng.IntN(2) == 0 {
				f = wire.AppendQueueMsg(nil, 9, wire.AppendMsg(nil, &m))
			} else {
				f = wire.AppendQueueMsg(nil, 9, wire.AppendCall(nil, uint64(i), &m))
			}
		case 5:
			f = wire.AppendCall(nil, uint64(i), &m)
		}
		last = f
		fr, _, ok := wire.Split(f)
		if !ok {
			t.Fatal("bad frame")
		}
		got := decodeOne(t, a, &alloc, fr)
		var fresh recvAlloc
		want := decodeOne(t, ref, &fresh, fr)
		g, w := describe(got), describe(want)
		if g != w {
			t.Fatalf("seed %d frame %d (%s): got %s, want %s", seed, i, wire.TypeName(fr.Type), g, w)
		}
	}
}

// decodeOne decodes f as readLoop does; nil for a message dropped.
func decodeOne(t *testing.T, a *Agent, alloc *recvAlloc, f wire.Frame) *Message {
	switch f.Type {
	case wire.TypeMsg:
		if f.Payload[0]&wire.FlagReplayed != 0 {
			a.replays = []*pendingReplay{{id: 1}}
			if err := a.onReplayed(alloc, f.Payload); err != nil {
				t.Fatal(err)
			}
			return a.replays[0].msgs[0]
		}
		m, err := alloc.received(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return m
	case wire.TypeSeqMsg:
		m, _, err := a.recvSeq(alloc, f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return m
	default:
		m, _, err := a.readCall(alloc, alloc, f)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

func describe(m *Message) string {
	if m == nil {
		return "dropped"
	}
	id := uint64(0)
	if m.call != nil {
		id = m.call.id
	}
	return fmt.Sprintf("%q %q %q %q %q json=%v replayed=%v request=%v/%d", m.Event, m.Channel, m.Agent, m.Node, m.Data, m.JSON, m.Replayed, m.IsRequest(), id)
}
