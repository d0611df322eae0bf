package server

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// runFrames returns frames of channel from agent "far" of node, one per
// event in events, their data the frame's number (JSON), back to back.
func runFrames(node backbone.NodeID, channel string, events ...string) (batch []byte, data int) {
	for i, ev := range events {
		d := fmt.Sprint(i + 1)
		data += len(d)
		batch = wire.AppendMsg(batch, &wire.Msg{Flags: wire.FlagJSON, Channel: channel, Agent: "far",
			Node: hex.EncodeToString(node[:]), Event: ev, Data: []byte(d)})
	}
	return batch, data
}

// The frames of a delivery that share their origin and event (runs) reach
// every recipient as each frame alone would: a run ends where the event
// changes, a legacy agent gets each frame as its own envelope, and the
// counters are those of single frames.
func TestBackboneRunsRouteAsFrames(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	_, in1 := ntListen(t, h, "A", "ev1")
	_, in2 := ntListen(t, h, "A", "ev2")

	legacy, err := net.Dial("unix", transport.SocketPath(h.dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	// Its first message makes it a legacy agent (it listens to everything).
	if _, err := legacy.Write([]byte(`{"channel":"A","broadcast":false,"event":"hello","data":0}` + "\x00")); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "the legacy agent", func() bool {
		ci, _ := h.srv.Channel("A")
		for _, a := range ci.Agents {
			if a.Legacy && a.MsgsIn == 1 {
				return true
			}
		}
		return false
	})

	node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
	events := []string{"ev1", "ev1", "ev1", "ev2", "ev2", "ev1", "ev1"}
	batch, data := runFrames(node, "A", events...)
	before, _ := h.srv.Channel("A")
	bb := h.srv.bb.Load()
	bb.deliver(node, batch, backbone.Stream{})

	var want1, want2 []string
	for i, ev := range events {
		if ev == "ev1" {
			want1 = append(want1, fmt.Sprint(i+1))
		} else {
			want2 = append(want2, fmt.Sprint(i+1))
		}
	}
	got := func(in *ntInbox) []string {
		var out []string
		for _, m := range in.get() {
			out = append(out, string(m.Data))
		}
		return out
	}
	ntWait(t, "every frame", func() bool {
		return len(in1.get()) == len(want1) && len(in2.get()) == len(want2)
	})
	if g := got(in1); strings.Join(g, ",") != strings.Join(want1, ",") {
		t.Errorf("the listener of ev1 got %q, want %q", g, want1)
	}
	if g := got(in2); strings.Join(g, ",") != strings.Join(want2, ",") {
		t.Errorf("the listener of ev2 got %q, want %q", g, want2)
	}
	r := bufio.NewReader(legacy)
	legacy.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, ev := range events {
		line, err := r.ReadString(0)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"channel":"A","broadcast":false,"event":%q,"data":%d}`+"\x00", ev, i+1); line != want {
			t.Errorf("legacy agent read %q, want %q", line, want)
		}
	}

	after, _ := h.srv.Channel("A")
	k := uint64(len(events))
	if got := after.MsgsIn - before.MsgsIn; got != k {
		t.Errorf("channel A counted %d messages in, want %d", got, k)
	}
	if got := after.BytesIn - before.BytesIn; got != uint64(data) {
		t.Errorf("channel A counted %d bytes in, want %d", got, data)
	}
	// Each frame went to its listener and the legacy agent.
	if got := after.MsgsOut - before.MsgsOut; got != 2*k {
		t.Errorf("channel A counted %d messages out, want %d", got, 2*k)
	}
	for _, a := range after.Agents {
		if a.Legacy {
			continue
		}
		want := uint64(len(want1))
		if a.Patterns[0] == "ev2" {
			want = uint64(len(want2))
		}
		if a.MsgsOut != want {
			t.Errorf("agent %s (%q) counted %d messages out, want %d", a.ID, a.Patterns, a.MsgsOut, want)
		}
	}
	if got := bb.st.routed.Load(); got != k {
		t.Errorf("routed %d, want %d", got, k)
	}
}

// A run reaches the channels its channel propagates to, with its origin.
func TestBackboneRunPropagates(t *testing.T) {
	t.Parallel()
	bothWays(t, func(t *testing.T, stream bool) {
		ns := natstest.Run(t, natstest.Options{NoJetStream: true})
		h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true, "propagatetochannels": "B"}, "B": {}}}`))
		bbConnected(t, h)
		_, inA := ntListen(t, h, "A", "ev")
		_, inB := ntListen(t, h, "B", "ev")
		node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
		events := []string{"ev", "ev", "ev", "ev"}
		batch, _ := runFrames(node, "A", events...)
		h.srv.bb.Load().deliver(node, batch, streamOf(batch, stream))
		ntWait(t, "every frame on A and B", func() bool { return len(inA.get()) == len(events) && len(inB.get()) == len(events) })
		for i, m := range inB.get() {
			if m.Channel != "A" || m.Agent != "far" || string(m.Data) != fmt.Sprint(i+1) || m.Node != hex.EncodeToString(node[:]) {
				t.Errorf("message %d on B: %+v", i, m)
			}
		}
	})
}

// A run larger than what a recipient's outbox may hold is not dropped: it
// goes frame by frame, waiting for room as single frames do.
func TestBackboneRunLargerThanOutbox(t *testing.T) {
	t.Parallel()
	bothWays(t, func(t *testing.T, stream bool) {
		ns := natstest.Run(t, natstest.Options{NoJetStream: true})
		h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"outbuffer": 65536, "channels": {"A": {"propagatetonet": true}}}`))
		bbConnected(t, h)
		_, in := ntListen(t, h, "A", "ev")
		node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
		const n = 5000 // about 180 KiB
		events := make([]string, n)
		for i := range events {
			events[i] = "ev"
		}
		batch, _ := runFrames(node, "A", events...)
		if len(batch) <= 2*65536 {
			t.Fatalf("the batch is %d bytes, not more than twice the outbox", len(batch))
		}
		h.srv.bb.Load().deliver(node, batch, streamOf(batch, stream))
		ntWait(t, "every frame", func() bool { return len(in.get()) == n })
		for i, m := range in.get() {
			if string(m.Data) != fmt.Sprint(i+1) {
				t.Fatalf("message %d: %q, want %d", i, m.Data, i+1)
			}
		}
		if ci, _ := h.srv.Channel("A"); ci.Dropped != 0 {
			t.Errorf("%d dropped", ci.Dropped)
		}
	})
}

// A frame of a run larger than what the agents here accept is refused and
// counted, alone; the frames around it are delivered.
func TestBackboneRunRefusesLargeFrame(t *testing.T) {
	t.Parallel()
	bothWays(t, func(t *testing.T, stream bool) {
		ns := natstest.Run(t, natstest.Options{NoJetStream: true})
		h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"maxframe": 1024, "channels": {"A": {"propagatetonet": true}}}`))
		bbConnected(t, h)
		_, in := ntListen(t, h, "A", "ev")
		node := backbone.NodeID{1, 2, 3, 4, 5, 6, 7, 8}
		var batch []byte
		for i, size := range []int{1, 1, 2000, 1, 1} {
			batch = wire.AppendMsg(batch, &wire.Msg{Channel: "A", Agent: "far", Node: hex.EncodeToString(node[:]),
				Event: "ev", Data: []byte(fmt.Sprint(i) + strings.Repeat("x", size-1))})
		}
		bb := h.srv.bb.Load()
		bb.deliver(node, batch, streamOf(batch, stream))
		ntWait(t, "the refusal counted", func() bool { return bb.st.refused.Load() == 1 })
		ntWait(t, "the other frames", func() bool { return len(in.get()) == 4 })
		var got []string
		for _, m := range in.get() {
			got = append(got, string(m.Data))
		}
		if strings.Join(got, ",") != "0,1,3,4" {
			t.Errorf("got %q, want 0, 1, 3, 4", got)
		}
	})
}

// bothWays runs test for the two ways a delivery of one stream's frames
// is routed: walked frame by frame (stream false), and as one run the
// backbone found them to be (stream true).
func bothWays(t *testing.T, test func(t *testing.T, stream bool)) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			test(t, stream)
		})
	}
}

// streamOf is what the backbone tells deliver of batch, frames of one
// stream, with stream; nothing without.
func streamOf(batch []byte, stream bool) backbone.Stream {
	var s backbone.Stream
	if !stream {
		return s
	}
	for f := range wire.Frames(batch) {
		s.Frames++
		s.Biggest = max(s.Biggest, len(f.Raw))
	}
	return s
}
