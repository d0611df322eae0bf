package backbone

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// What SendMsg queues for a Msg payload is what Send queues for its whole
// frame: the node id written into an empty Node field, any other Node
// left as it is, and bytes that are no Msg payload framed unchanged.
func TestAppendOutPayload(t *testing.T) {
	t.Parallel()
	b := &Backbone{}
	hex.Encode(b.nodeHex[:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	for _, m := range []wire.Msg{
		{Channel: "A", Agent: "ag", Event: "ev", Data: []byte("data")},
		{Flags: wire.FlagJSON, Channel: "a longer channel", Agent: "agent-1", Event: "e", Data: nil},
		{Channel: "A", Agent: "ag", Node: "elsewhere", Event: "ev", Data: []byte("x")},
	} {
		f := wire.AppendMsg(nil, &m)
		want := b.appendFrame([]byte("head"), f)
		if got := b.appendOut([]byte("head"), f[wire.HeaderLen:], true); !bytes.Equal(got, want) {
			t.Errorf("%+v: appendOut of the payload\n%q, want\n%q", m, got, want)
		}
		v, err := wire.ParseMsg(want[4+wire.HeaderLen:])
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		wantNode := m.Node
		if wantNode == "" {
			wantNode = string(b.nodeHex[:])
		}
		if string(v.Node) != wantNode || string(v.Channel) != m.Channel || string(v.Agent) != m.Agent || string(v.Event) != m.Event || !bytes.Equal(v.Data, m.Data) || v.Flags != m.Flags {
			t.Errorf("%+v: framed as %+v", m, v.Msg())
		}
	}
	for _, p := range [][]byte{{}, {0}, {0, 5, 'A'}, {0, 1, 'A', 9}} {
		want := append(wire.AppendHeader([]byte("head"), wire.TypeMsg, len(p)), p...)
		if got := b.appendOut([]byte("head"), p, true); !bytes.Equal(got, want) {
			t.Errorf("payload %q: %q, want %q", p, got, want)
		}
	}
}

// Messages given to SendMsg as SeqMsg payloads reach the other server as
// Msg frames with their fields and the sender's node, on plain and on
// durable channels.
func TestSendMsg(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := open(t, natsCfg(ns.URL()), 1, dur)
	b, sb := open(t, natsCfg(ns.URL()), 2, dur)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("A", []string{"ev"}, false)
	b.SetInterest("D", []string{"ev"}, false)
	waitFor(t, "subscriptions", 10*time.Second, func() bool {
		return len(b.Subjects()) == 1 && len(b.Stats().Durable) == 1
	})
	const n = 20
	for i := range n {
		ch := "A"
		if i%2 == 1 {
			ch = "D"
		}
		m := wire.Msg{Channel: ch, Agent: "ag", Event: "ev", Data: []byte(fmt.Sprint(i))}
		seq := wire.AppendSeqMsg(nil, 7, uint64(i+1), &m)
		if err := a.SendMsg(ch, "ev", seq[wire.HeaderLen+wire.SeqMsgOverhead:]); err != nil {
			t.Fatal(err)
		}
	}
	sb.waitLen(t, n, 10*time.Second)
	var gotA, gotD []wire.Msg
	for _, m := range sb.msgs() {
		if m.Channel == "A" {
			gotA = append(gotA, m)
		} else {
			gotD = append(gotD, m)
		}
	}
	if len(gotA) != n/2 || len(gotD) != n/2 {
		t.Fatalf("got %d on A and %d on D, want %d each", len(gotA), len(gotD), n/2)
	}
	for i := range n / 2 {
		// Plain channels carry the node in the frame; durable ones as sent.
		if m := gotA[i]; m.Agent != "ag" || m.Event != "ev" || string(m.Data) != fmt.Sprint(2*i) || m.Node != "0100000000000000" {
			t.Errorf("message %d on A: %+v", i, m)
		}
		if m := gotD[i]; m.Agent != "ag" || m.Event != "ev" || string(m.Data) != fmt.Sprint(2*i+1) || m.Node != "" {
			t.Errorf("message %d on D: %+v", i, m)
		}
	}
}

// SendSeqMsgs queues a run of SeqMsg frames as SendMsg queues each: all
// arrive, in order, as Msg frames with the sender's node. It stops after
// the frame that leaves the queue crowded and returns the frames after
// it, for the caller to send once it has waited.
func TestSendSeqMsgs(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	b, sb := open(t, natsCfg(ns.URL()), 2, nil)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("A", []string{"ev"}, false)
	waitFor(t, "subscription", 10*time.Second, func() bool { return len(b.Subjects()) == 1 })
	if err := b.Flush(); err != nil { // the NATS server has the subscription
		t.Fatal(err)
	}

	const n = 40
	var run []byte
	for i := range n {
		m := wire.Msg{Channel: "A", Agent: "ag", Event: "ev", Data: []byte(fmt.Sprintf("message %d", i))}
		run = wire.AppendSeqMsg(run, 7, uint64(i+1), &m)
	}
	size := len(run) / n // each frame, give or take a digit
	a.pub.mu.Lock()
	a.pub.crowd = 10 * size // crowded after about ten frames
	a.pub.mu.Unlock()
	calls := 0
	for rest := run; len(rest) > 0; calls++ {
		before := len(rest)
		var crowded bool
		rest, crowded = a.SendSeqMsgs("A", "ev", rest)
		if len(rest) > 0 && !crowded {
			t.Fatalf("call %d returned %d bytes unsent, not crowded", calls, len(rest))
		}
		if crowded && before-len(rest) > 12*size {
			t.Fatalf("call %d queued %d bytes before it stopped, past the crowd of %d", calls, before-len(rest), 10*size)
		}
		waitFor(t, "the queue to drain", 10*time.Second, func() bool { return !a.Crowded() })
	}
	if calls < 2 {
		t.Errorf("%d calls for %d bytes: SendSeqMsgs never stopped for a crowded queue", calls, len(run))
	}
	for deadline := time.Now().Add(10 * time.Second); sb.len() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived; sender %+v; receiver %+v", sb.len(), n, a.Stats(), b.Stats())
		}
	}
	for i, m := range sb.msgs() {
		if m.Channel != "A" || m.Agent != "ag" || m.Event != "ev" || string(m.Data) != fmt.Sprintf("message %d", i) || m.Node != "0100000000000000" {
			t.Errorf("message %d: %+v", i, m)
		}
	}
	if st := a.Stats(); st.MsgsOut != n || st.Dropped != 0 {
		t.Errorf("stats: %d out, %d dropped; want %d, 0", st.MsgsOut, st.Dropped, n)
	}
}

// A frame of a run that does not fit in the outbound bound is dropped and
// counted, as SendMsg drops it; the ones that fit are queued.
func TestSendSeqMsgsDrops(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	a, _ := open(t, natsCfg(ns.URL()), 1, nil)
	waitConnected(t, a)
	big := wire.AppendSeqMsg(nil, 7, 1, &wire.Msg{Channel: "A", Agent: "ag", Event: "ev", Data: make([]byte, 1000)})
	small := wire.AppendSeqMsg(nil, 7, 2, &wire.Msg{Channel: "A", Agent: "ag", Event: "ev", Data: []byte("x")})
	run := append(append(append([]byte(nil), big...), big...), small...)
	a.pub.mu.Lock()
	a.pub.limit = len(big) + 100 // one large frame and the small one
	a.pub.mu.Unlock()
	// One call holds the queue's lock throughout: the flusher takes
	// nothing between the frames.
	rest, crowded := a.SendSeqMsgs("A", "ev", run)
	if len(rest) != 0 || crowded {
		t.Fatalf("%d bytes left, crowded %v", len(rest), crowded)
	}
	waitFor(t, "the messages", 10*time.Second, func() bool { st := a.Stats(); return st.MsgsOut+st.Dropped == 3 })
	if st := a.Stats(); st.MsgsOut != 2 || st.Dropped != 1 {
		t.Errorf("%d out, %d dropped; want the second large one dropped: 2, 1", st.MsgsOut, st.Dropped)
	}
}
