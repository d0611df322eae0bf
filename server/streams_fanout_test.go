package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// A uid's budget gives at most streamEndBurst StreamEnds at once, refills
// at streamEndRate a second, and is its own: another uid's churn takes
// nothing from it.
func TestStreamEndBudget(t *testing.T) {
	var f fanout
	now := time.Now()
	if k := f.take(1000, streamEndBurst+5, now); k != streamEndBurst {
		t.Fatalf("first take: %d, want the burst %d", k, streamEndBurst)
	}
	if k := f.take(1000, 10, now); k != 0 {
		t.Fatalf("budget used up: %d taken", k)
	}
	if k := f.take(1001, 10, now); k != 10 {
		t.Fatalf("another uid: %d of 10", k)
	}
	if k := f.take(1000, streamEndBurst, now.Add(time.Second)); k != streamEndRate {
		t.Fatalf("a second later: %d, want %d", k, streamEndRate)
	}
	for uid := range 3 * maxFanoutUIDs {
		f.take(uid, 1, now)
	}
	if n := len(f.byUID); n > maxFanoutUIDs {
		t.Fatalf("%d budgets kept, bound %d", n, maxFanoutUIDs)
	}
}

// A sender's end draws on its uid's budget: with it used up, its
// receivers get no StreamEnd, and it is counted.
func TestStreamEndWithinBudget(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n")
	r.sync()
	snd := dialGap(t, s, "A", "snd", wire.VersionGaps, 9)
	snd.sync()
	uid := (*s.byName.Load())["A"].agent("snd").uid
	s.fanout.take(uid, 1, time.Now())
	s.fanout.mu.Lock()
	s.fanout.byUID[uid].left = -60 * streamEndRate // used up for a minute
	s.fanout.mu.Unlock()
	snd.write(seqMsgs("A", "snd", 9, 1, 2))
	snd.sync()
	snd.nc.Close()
	waitUntil(t, "the sender left", func() bool { _, ok := s.Agent("A", "snd"); return !ok })
	for _, f := range r.sync() {
		if f.Type != wire.TypeSeqMsg {
			t.Errorf("got a %s frame with the budget used up", wire.TypeName(f.Type))
		}
	}
	if ci, _ := s.Channel("A"); ci.StreamEnds != 0 || ci.StreamEndsDropped != 1 {
		t.Fatalf("channel A counts %d StreamEnds, %d dropped; want 0 and 1", ci.StreamEnds, ci.StreamEndsDropped)
	}
}

// A stream that never numbered a message (it announced 0 and sent none)
// has no receiver watching it: its end costs no StreamEnd.
func TestNoStreamEndWithoutNumbers(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n")
	r.sync()
	for i := range 20 {
		g := dialGap(t, s, "A", fmt.Sprint("listener", i), wire.VersionGaps, uint32(10+i), "n")
		g.sync()
		g.nc.Close()
	}
	waitUntil(t, "the listeners left", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == 1 })
	if fs := r.sync(); len(fs) != 0 {
		t.Fatalf("got %d frames (first %s) for the end of listeners that numbered nothing", len(fs), wire.TypeName(fs[0].Type))
	}
	if ci, _ := s.Channel("A"); ci.StreamEnds != 0 || ci.StreamEndsDropped != 0 {
		t.Fatalf("channel A counts %d StreamEnds, %d dropped; want none", ci.StreamEnds, ci.StreamEndsDropped)
	}
}

// A receiver that reads slowly is kept in drop mode ("slowconsumer":
// "drop", the default) with a full outbox; other agents' ends fill it
// with StreamEnds only up to streamEndLimit, so its own control frames
// (a Pong here, an Ack for a sender) still fit below twice outbuffer and
// it is not disconnected for another process's churn.
func TestStreamEndsLeaveRoomForControl(t *testing.T) {
	s := gapServer(t, func(bus *config.Config) { bus.OutBuffer = 64 << 10 })
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n") // reads nothing from now on
	fill := dialGap(t, s, "A", "fill", wire.VersionGaps, 2)
	big := make([]byte, 30<<10)
	for i := 0; ; i++ {
		fill.write(wire.AppendSeqMsg(nil, 2, uint64(i+1), &wire.Msg{Channel: "A", Agent: "fill", Event: "n", Data: big}))
		fill.sync()
		// Past what the pipe holds, r's writer is stuck.
		if info, _ := s.Agent("A", "r"); info.Queued > 32<<10 && info.MsgsOut*(30<<10) > inProcessBuffer {
			break
		}
		if i == 1000 {
			t.Fatal("r's outbox does not fill")
		}
	}
	long := strings.Repeat("x", 59)
	frame := len(wire.AppendStreamEnd(nil, wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: "h0000" + long}}))
	for i := range 2*(64<<10)/frame + 10 { // enough to pass twice outbuffer
		g := dialGap(t, s, "A", fmt.Sprintf("h%04d%s", i, long), wire.VersionGaps, uint32(100+i))
		g.write(wire.AppendStream(nil, uint32(100+i), 1))
		g.sync()
		g.nc.Close()
	}
	waitUntil(t, "the others gone", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == 2 })
	info, _ := s.Agent("A", "r")
	ci, _ := s.Channel("A")
	t.Logf("StreamEnds %d queued, %d dropped; r holds %d bytes (outbuffer %d)", ci.StreamEnds, ci.StreamEndsDropped, info.Queued, 64<<10)
	if ci.StreamEndsDropped == 0 {
		t.Fatal("no StreamEnd dropped")
	}
	if lim := streamEndLimit(64 << 10); info.Queued > lim || info.Queued < lim-frame {
		t.Fatalf("r holds %d bytes; StreamEnds should fill it to %d", info.Queued, lim)
	}
	r.write(wire.AppendU64(nil, wire.TypePing, 2))
	time.Sleep(200 * time.Millisecond)
	c := (*s.byName.Load())["A"].agent("r")
	if c == nil {
		t.Fatal("r was disconnected after another process's churn")
	}
	c.omu.Lock()
	closing := c.closing
	c.omu.Unlock()
	if closing {
		t.Fatal("r, slow but within drop mode's rules, is being disconnected (not reading its replies) after another process's churn")
	}
}
