package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// replayNumbers returns the data of msgs as integers, failing on any
// message not marked replayed.
func replayNumbers(t testing.TB, msgs []*netcluster.Message) []int {
	t.Helper()
	var out []int
	for _, m := range msgs {
		if !m.Replayed {
			t.Errorf("message %q not marked replayed", m.Data)
		}
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Fatalf("message data %q is not a number", m.Data)
		}
		out = append(out, n)
	}
	return out
}

func checkRange(t testing.TB, what string, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("%s: got %v, want %d..%d", what, got, from, to-1)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("%s: got %v, want %d..%d in order", what, got, from, to-1)
		}
	}
}

// TestReplayDurable emits 50 numbered messages on a durable channel from
// host 1; an agent that connects later on host 2 replays the last 10, or
// those since a time, marked replayed; a plain channel refuses.
func TestReplayDurable(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	chans := `{"channels": {"D": {"propagatetonet": true, "durable": {}}, "P": {"propagatetonet": true}}}`
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, strings.Replace(chans, "{", `{"nodename": "rp1",`, 1)))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, strings.Replace(chans, "{", `{"nodename": "rp2",`, 1)))
	bbConnected(t, h1, h2)

	src := ctlAgent(t, h1.dir, "D")
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			if err := src.EmitRaw(ctlCtx(t), "n", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			if err := src.EmitRaw(ctlCtx(t), "other", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := src.Flush(ctlCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	emit(0, 40)
	// Stored in order: wait until the replay sees the last one.
	late := ctlAgent(t, h2.dir, "D")
	ntWait(t, "messages stored", func() bool {
		msgs, err := late.Replay(ctlCtx(t), "n", netcluster.Last(1))
		return err == nil && len(msgs) == 1 && string(msgs[0].Data) == "39"
	})
	time.Sleep(20 * time.Millisecond)
	mark := time.Now()
	time.Sleep(20 * time.Millisecond)
	emit(40, 50)
	ntWait(t, "all stored", func() bool {
		msgs, err := late.Replay(ctlCtx(t), "n", netcluster.Last(1))
		return err == nil && len(msgs) == 1 && string(msgs[0].Data) == "49"
	})

	msgs, err := late.Replay(ctlCtx(t), "n", netcluster.Last(10))
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, "Last(10)", replayNumbers(t, msgs), 40, 50)
	for _, m := range msgs {
		if m.Channel != "D" || m.Event != "n" || m.Node == "" {
			t.Fatalf("replayed message %+v: want channel D, event n, a node (from host 1)", m)
		}
	}

	msgs, err = late.Replay(ctlCtx(t), "n", netcluster.Since(mark))
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, "Since(mark)", replayNumbers(t, msgs), 40, 50)

	msgs, err = late.Replay(ctlCtx(t), "n", netcluster.Since(mark.Add(-time.Hour)), netcluster.Last(5))
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, "Since(an hour ago), Last(5)", replayNumbers(t, msgs), 45, 50)

	// The publishing host replays its own messages too, Node empty.
	msgs, err = src.Replay(ctlCtx(t), "n|other", netcluster.Last(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 100 || msgs[0].Node != "" || string(msgs[99].Data) != "x" || string(msgs[98].Data) != "49" {
		t.Fatalf("own replay: %d messages, first node %q", len(msgs), msgs[0].Node)
	}

	plain := ctlAgent(t, h2.dir, "P")
	if _, err := plain.Replay(ctlCtx(t), "n", netcluster.Last(1)); err == nil || !strings.Contains(err.Error(), "not a durable channel") {
		t.Fatalf("replay on a plain channel: %v, want not a durable channel", err)
	}
	if _, err := late.Replay(ctlCtx(t), "n", netcluster.Last(0)); err == nil || !strings.Contains(err.Error(), "Last(0)") {
		t.Fatalf("Last(0): %v", err)
	}
	if _, err := late.Replay(ctlCtx(t), "a(", netcluster.Last(1)); err == nil || !strings.Contains(err.Error(), "invalid listener pattern") {
		t.Fatalf("bad pattern: %v", err)
	}
	// The connection still works after the errors.
	if _, err := late.Replay(ctlCtx(t), "n", netcluster.Last(2)); err != nil {
		t.Fatal(err)
	}
}

// TestReplayWithoutBackbone: a server without NATS answers with an error,
// at once.
func TestReplayWithoutBackbone(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	a := ctlAgent(t, dir, "A")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Replay(ctx, "n", netcluster.Last(1)); err == nil || !strings.Contains(err.Error(), "no NATS backbone") {
		t.Fatalf("replay without a backbone: %v", err)
	}
}

// TestReplayedFlagFromAgent: only a server marks a message replayed; an
// agent that does is refused, so it cannot pass live messages off as
// another agent's replay.
func TestReplayedFlagFromAgent(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	r := ctlDialRaw(t, dir, "A", "raw")
	r.write(wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagReplayed, Channel: "A", Agent: "raw", Event: "n"}))
	f := r.next()
	e, err := wire.ParseError(f.Payload)
	if f.Type != wire.TypeError || err != nil || e.Code != wire.CodeMalformed || !strings.Contains(e.Text, "replayed flag") {
		t.Fatalf("got %s frame %+v, want error malformed naming the replayed flag", wire.TypeName(f.Type), e)
	}
}
