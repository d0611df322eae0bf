package server

import (
	"bufio"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A SeqMsg is checked like a Msg (onMsg): its origin, its event, and the
// replayed flag, which is the server's to set; and its number.
func TestSeqMsgChecked(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	seq := func(n uint64, m wire.Msg) []byte { return wire.AppendSeqMsg(nil, 7, n, &m) }
	good := seq(1, wire.Msg{Channel: "A", Agent: "q", Event: "e", Data: []byte("d")})
	// The right origin, then an event length of 256 past the frame's end.
	cut := []byte{0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 'A', 1, 'q', 0, 1, 0}
	cut = append(wire.AppendHeader(nil, wire.TypeSeqMsg, len(cut)), cut...)
	for _, tt := range []struct {
		frame []byte
		code  uint16
		text  string
	}{
		{seq(2, wire.Msg{Channel: "A", Agent: "other", Event: "e"}), wire.CodeOrigin, `seqmsg origin ""/"A"/"other"`},
		{seq(2, wire.Msg{Channel: "B", Agent: "q", Event: "e"}), wire.CodeOrigin, "seqmsg origin"},
		{seq(2, wire.Msg{Channel: "A", Agent: "q", Node: "n", Event: "e"}), wire.CodeOrigin, `seqmsg origin "n"/"A"/"q"`},
		{seq(2, wire.Msg{Channel: "A", Agent: "q"}), wire.CodeMalformed, "seqmsg: empty event name"},
		{seq(2, wire.Msg{Flags: wire.FlagReplayed, Channel: "A", Agent: "q", Event: "e"}), wire.CodeMalformed, "seqmsg: the replayed flag is the server's to set"},
		{seq(0, wire.Msg{Channel: "A", Agent: "q", Event: "e"}), wire.CodeMalformed, "sequence number 0"},
		{cut, wire.CodeMalformed, "seqmsg: wire: truncated frame"},
	} {
		r := qDialRaw(t, dir, "A", "q", wire.VersionAcks)
		r.write(append(append([]byte(nil), good...), tt.frame...))
		f := r.next()
		for f.Type == wire.TypeAck { // of good
			f = r.next()
		}
		e, _ := wire.ParseError(f.Payload)
		if f.Type != wire.TypeError || e.Code != tt.code || !strings.Contains(e.Text, tt.text) {
			t.Errorf("got %s %d %q, want error %d containing %q", wire.TypeName(f.Type), e.Code, e.Text, tt.code, tt.text)
		}
	}
}

// A recipient that was dropped for, and so not waited for, is waited for
// again once it reads: its agent is back in its channel's ackSet
// (acks_set.go) when it is worth waiting for, and idle agents are not in
// it.
func TestAckWaitsForRecipientAgain(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"outbuffer": 1048576, "channels": {"A": {}}}`)
	ch := srv.channels["A"]
	for i := range 20 { // idle agents: never in the set
		qDialRaw(t, dir, "A", "idle"+string(rune('a'+i)), wire.VersionAcks)
	}
	rcv := qDialRaw(t, dir, "A", "r", wire.VersionAcks)
	rcv.write(wire.AppendListen(nil, wire.TypeListen, "x"))
	for deadline := time.Now().Add(10 * time.Second); len(ch.index.Match([]byte("x"))) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listener was not added")
		}
	}
	snd := qDialRaw(t, dir, "A", "s", wire.VersionAcks)
	var acked atomic.Uint64
	go func() {
		for {
			f, err := snd.rd.Next()
			if err != nil {
				return
			}
			if f.Type == wire.TypeAck {
				n, _ := wire.ParseU64(f.Payload)
				acked.Store(n)
			}
		}
	}()
	var n uint64
	send := func(count int) {
		var b []byte
		for range count {
			n++
			b = wire.AppendSeqMsg(b, 1, n, &wire.Msg{Channel: "A", Agent: "s", Event: "x", Data: make([]byte, 128)})
		}
		snd.write(b)
	}
	waitAcked := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); acked.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: acknowledged %d of %d", what, acked.Load(), n)
			}
		}
	}

	// The receiver reads nothing: its outbox fills and the server drops
	// for it, so the sender's messages are acknowledged.
	send(12000)
	waitAcked("receiver dropped for")
	checkAckSet(t, ch)
	if ch.agent("r").dropped.Load() == 0 {
		t.Fatal("nothing was dropped for the receiver: its outbox did not fill")
	}

	// It reads all, then stops again with messages queued for it and its
	// writer blocked: a round waits for it (1 s at most without
	// progress), so nothing sent now is acknowledged before 700 ms.
	drain(t, rcv)
	checkAckSet(t, ch)
	t0 := time.Now()
	send(4000)
	for time.Since(t0) < 700*time.Millisecond {
		if acked.Load() == n {
			t.Fatalf("acknowledged after %v, while the receiver had them queued and read nothing", time.Since(t0))
		}
		time.Sleep(time.Millisecond)
	}
	checkAckSet(t, ch)
	drain(t, rcv)
	waitAcked("receiver read all")
	checkAckSet(t, ch)
}

// drain reads what the server wrote to r until it has written nothing
// for 300 ms.
func drain(t *testing.T, r *ctlRaw) {
	t.Helper()
	br := bufio.NewReaderSize(r.nc, 64<<10)
	for {
		r.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.Copy(io.Discard, br); err != nil {
			return // the deadline
		}
		t.Fatal("connection closed")
	}
}

// checkAckSet fails if a member of ch that a round would wait for is not
// in ch's ackSet, or if an idle one is (one the last round has not looked
// at may be).
func checkAckSet(t *testing.T, ch *channel) {
	t.Helper()
	in := 0
	for _, c := range ch.members() {
		c.omu.Lock()
		need := c.takes
		if len(c.obuf) > 0 {
			need++
		}
		pending := len(c.conv) > 0 || c.batches.Load() < need
		if pending && !c.droppingLocked() && c.ackStuck.Load() == 0 && c.ackIn.Load() != ackIn {
			t.Errorf("agent %s has something to wait for (need %d, written %d) and is not in the set", c.id, need, c.batches.Load())
		}
		if c.ackIn.Load() == ackIn {
			in++
		}
		c.omu.Unlock()
	}
	if in > 3 {
		t.Errorf("%d agents in the set, want the sender and the receiver at most", in)
	}
}

// A connection taken for a legacy agent by its silence, whose outbox
// filled while it was undecided, is still full after the decision (its
// writer has not taken anything yet): what does not fit is dropped without
// omu, and a round of acknowledgements does not wait for it. 100 such
// silent connections beside a healthy pair are an attack of issue 10,
// item 5.
func TestLegacyDecisionKeepsFull(t *testing.T) {
	_, ch, frame, v := stallServer(t) // outbuffer 64 KiB, 1,000-byte messages
	r := newConn(ch, newStuckSink())
	t.Cleanup(r.close)
	r.omu.Lock()
	r.undecided = true
	r.omu.Unlock()
	for range 100 {
		r.deliver(&delivery{raw: frame, v: &v})
	}
	if r.full.Load() == 0 || r.dropped.Load() == 0 {
		t.Fatalf("undecided: full %d, dropped %d; want its outbox full", r.full.Load(), r.dropped.Load())
	}
	r.toLegacy()
	r.omu.Lock()
	dropping := r.droppingLocked()
	r.omu.Unlock()
	if !dropping {
		t.Fatal("after the decision: not dropped for; want its outbox still full")
	}
	if _, legacy := fullRoom(r.full.Load()); !legacy {
		t.Fatal("the room left is not measured for envelopes")
	}
	d := delivery{raw: frame, v: &v}
	before := r.dropped.Load()
	if fd := fullDropOf(&d, ch.srv.limits.Load()); !fd.drops(r) || r.dropped.Load() != before+1 {
		t.Fatalf("a message after the decision: dropped %d, want 1 without omu", r.dropped.Load()-before)
	}
}
