package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// gapAgent is a raw agent of some protocol version that reads its frames.
type gapAgent struct {
	t  *testing.T
	nc net.Conn
	rd *wire.Reader
}

// dialGap connects agent id to channel ch with the given version, reads
// its Welcome, and, for version 4, announces stream (with last number
// 0) before its patterns.
func dialGap(t *testing.T, s *Server, ch, id string, version byte, stream uint32, patterns ...string) *gapAgent {
	t.Helper()
	nc, err := s.Dial(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: version, AgentID: id, Channel: ch})...)
	if version >= wire.VersionGaps {
		b = wire.AppendStream(b, stream, 0)
	}
	for _, p := range patterns {
		b = wire.AppendListen(b, wire.TypeListen, p)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	g := &gapAgent{t: t, nc: nc, rd: wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	if f := g.next(); f.Type != wire.TypeWelcome {
		t.Fatalf("%s: got %s, want welcome", id, wire.TypeName(f.Type))
	}
	return g
}

func (g *gapAgent) write(b []byte) {
	g.t.Helper()
	if _, err := g.nc.Write(b); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gapAgent) next() wire.Frame {
	g.t.Helper()
	g.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := g.rd.Next()
	if err != nil {
		g.t.Fatal(err)
	}
	return f
}

// sync sends a Ping and returns the frames before its Pong: all the
// server had queued for the agent when it read the Ping.
func (g *gapAgent) sync() []wire.Frame {
	g.t.Helper()
	g.write(wire.AppendU64(nil, wire.TypePing, 77))
	var fs []wire.Frame
	for {
		f := g.next()
		if f.Type == wire.TypePong {
			return fs
		}
		f.Payload = append([]byte(nil), f.Payload...)
		fs = append(fs, f)
	}
}

func seqMsgs(ch, id string, stream uint32, from, to uint64) []byte {
	var b []byte
	for n := from; n <= to; n++ {
		b = wire.AppendSeqMsg(b, stream, n, &wire.Msg{Channel: ch, Agent: id, Event: "n", Data: []byte("x")})
	}
	return b
}

func gapServer(t *testing.T, edit func(*config.Config)) *Server {
	return lifecycleServer(t, func(bus *config.Config) {
		bus.Channels["B"] = &config.Channel{}
		bus.Channels["C"] = &config.Channel{}
		bus.Channels["A"].Propagate, _ = config.PropagatePattern("B")
		if edit != nil {
			edit(bus)
		}
	})
}

// When a sender of version 4 closes its connection, the agents of version
// 4 of its channel and of the channels it propagates to get a StreamEnd
// naming its stream and last number, after its messages; agents of
// versions 1 to 3, the sender, and the channels it does not propagate to
// get nothing new.
func TestStreamEndAfterMessages(t *testing.T) {
	s := gapServer(t, nil)
	r4 := dialGap(t, s, "A", "r4", wire.VersionGaps, 1, "n")
	quiet := dialGap(t, s, "A", "quiet", wire.VersionGaps, 2) // listens to nothing: told too
	r3 := dialGap(t, s, "A", "r3", wire.VersionAcks, 0, "n")
	r2 := dialGap(t, s, "A", "r2", wire.VersionCalls, 0, "n")
	r1 := dialGap(t, s, "A", "r1", wire.Version, 0, "n")
	b4 := dialGap(t, s, "B", "b4", wire.VersionGaps, 3, "n")
	c4 := dialGap(t, s, "C", "c4", wire.VersionGaps, 4, "n")
	all := []*gapAgent{r4, quiet, r3, r2, r1, b4, c4}
	for _, g := range all {
		g.sync() // listening
	}
	snd := dialGap(t, s, "A", "snd", wire.VersionGaps, 0xabc, "n")
	snd.write(seqMsgs("A", "snd", 0xabc, 1, 5))
	snd.sync() // routed
	snd.nc.Close()
	waitUntil(t, "the sender left", func() bool { _, ok := s.Agent("A", "snd"); return !ok })

	want := wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: "snd", Stream: 0xabc}, Seq: 5}
	for _, tc := range []struct {
		g         *gapAgent
		msgs      int
		streamEnd bool
	}{{r4, 5, true}, {quiet, 0, true}, {r3, 5, false}, {r2, 5, false}, {r1, 5, false}, {b4, 5, true}, {c4, 0, false}} {
		fs := tc.g.sync()
		msgs, ends := 0, 0
		for i, f := range fs {
			switch f.Type {
			case wire.TypeSeqMsg, wire.TypeMsg:
				msgs++
			case wire.TypeStreamEnd:
				ends++
				if i != len(fs)-1 {
					t.Errorf("%s: the StreamEnd is frame %d of %d, not after the messages", tc.g.nc.LocalAddr(), i+1, len(fs))
				}
				e, err := wire.ParseStreamEnd(f.Payload)
				if err != nil || e != want {
					t.Errorf("StreamEnd %+v, %v; want %+v", e, err, want)
				}
			default:
				t.Errorf("unexpected %s frame", wire.TypeName(f.Type))
			}
		}
		if msgs != tc.msgs || (ends == 1) != tc.streamEnd || ends > 1 {
			t.Errorf("agent %d: %d messages and %d StreamEnds; want %d and %v", indexOf(all, tc.g), msgs, ends, tc.msgs, tc.streamEnd)
		}
	}
	if ci, _ := s.Channel("A"); ci.StreamEnds != 2 || ci.StreamEndsDropped != 0 {
		t.Errorf("channel A counts %d StreamEnds, %d dropped; want 2 and 0", ci.StreamEnds, ci.StreamEndsDropped)
	}
}

func indexOf(gs []*gapAgent, g *gapAgent) int {
	for i, o := range gs {
		if o == g {
			return i
		}
	}
	return -1
}

// The StreamEnd's number is the last the sender announced when it sent
// no message on the connection, else the last it sent.
func TestStreamEndNumber(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n")
	r.sync()
	snd := dialGap(t, s, "A", "snd", wire.VersionGaps, 9)
	snd.write(wire.AppendStream(nil, 9, 41)) // again, the same stream: allowed
	snd.sync()
	snd.nc.Close()
	fs := r.sync()
	for len(fs) == 0 {
		fs = r.sync()
	}
	e, err := wire.ParseStreamEnd(fs[0].Payload)
	if err != nil || e.Seq != 41 || e.Stream != 9 {
		t.Fatalf("StreamEnd %+v, %v; want stream 9, number 41", e, err)
	}
}

// An agent whose connection the server ends (here: replaced by a new
// connection with its id, as a reconnecting agent does; or closed for a
// protocol error) is expected back with its stream: no StreamEnd.
func TestNoStreamEndWhenServerEnds(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n")
	r.sync()
	old := dialGap(t, s, "A", "snd", wire.VersionGaps, 7)
	old.write(seqMsgs("A", "snd", 7, 1, 3))
	old.sync()
	dialGap(t, s, "A", "snd", wire.VersionGaps, 7).sync() // replaces old
	bad := dialGap(t, s, "A", "bad", wire.VersionGaps, 8)
	bad.write(wire.AppendStream(nil, 9, 0)) // another stream: Error 3
	if f := bad.next(); f.Type != wire.TypeError {
		t.Fatalf("a second stream: got %s, want error", wire.TypeName(f.Type))
	}
	waitUntil(t, "the old and the bad connection gone", func() bool {
		ci, _ := s.Channel("A")
		return len(ci.Agents) == 2
	})
	for _, f := range r.sync() {
		if f.Type != wire.TypeSeqMsg {
			t.Errorf("got a %s frame", wire.TypeName(f.Type))
		}
	}
}

// Stream and Watch are version 4 frames: on a version 3 connection they
// are a protocol error.
func TestGapFramesNeedVersion4(t *testing.T) {
	s := gapServer(t, nil)
	for _, frame := range [][]byte{wire.AppendStream(nil, 1, 0), wire.AppendRefs(nil, wire.TypeWatch, nil)} {
		g := dialGap(t, s, "A", "v3", wire.VersionAcks, 0)
		g.write(frame)
		f := g.next()
		e, _ := wire.ParseError(f.Payload)
		if f.Type != wire.TypeError || e.Code != wire.CodeProtocol || !strings.Contains(e.Text, "protocol version 3") {
			t.Fatalf("%s on version 3: %s %+v", wire.TypeName(frame[4]), wire.TypeName(f.Type), e)
		}
	}
}

// Past its restart grace the server answers a Watch at once, with the
// streams asked about that are not connected, in the order asked.
func TestWatchAnswersGone(t *testing.T) {
	s := gapServer(t, nil)
	s.started = time.Now().Add(-time.Minute) // long past the grace
	dialGap(t, s, "A", "snd", wire.VersionGaps, 5).sync()
	dialGap(t, s, "B", "old", wire.VersionAcks, 0).sync() // announces no stream
	r := dialGap(t, s, "B", "r", wire.VersionGaps, 1)
	refs := []wire.StreamRef{
		{Channel: "A", Agent: "snd", Stream: 5},   // connected
		{Channel: "A", Agent: "snd", Stream: 6},   // connected, another stream: a restarted agent
		{Channel: "A", Agent: "dead", Stream: 5},  // not connected
		{Channel: "B", Agent: "old", Stream: 123}, // version 3: taken as connected
		{Channel: "Z", Agent: "snd", Stream: 5},   // no such channel
	}
	r.write(wire.AppendRefs(nil, wire.TypeWatch, refs))
	fs := r.sync()
	if len(fs) != 1 || fs[0].Type != wire.TypeGone {
		t.Fatalf("got %d frames, want one Gone", len(fs))
	}
	got, err := wire.ParseRefs(nil, fs[0].Payload, maxWatched)
	want := []wire.StreamRef{refs[1], refs[2], refs[4]}
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("Gone %+v, %v; want %+v", got, err, want)
	}
	// A Watch of more streams than maxWatched on one connection is refused.
	many := make([]wire.StreamRef, maxWatched-len(refs)+1)
	for i := range many {
		many[i] = wire.StreamRef{Channel: "A", Agent: "x", Stream: uint32(i)}
	}
	r.write(wire.AppendRefs(nil, wire.TypeWatch, many))
	f := r.next()
	if e, _ := wire.ParseError(f.Payload); f.Type != wire.TypeError || e.Code != wire.CodeForbidden {
		t.Fatalf("too many watched: %s %+v, want error 11", wire.TypeName(f.Type), e)
	}
}

// During the restart grace a Watch is answered when the grace ends, so
// that the senders that were connected before the restart have come back:
// one that did is not listed, one that did not is.
func TestWatchWaitsForGrace(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1)
	r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{
		{Channel: "A", Agent: "back", Stream: 5}, {Channel: "A", Agent: "dead", Stream: 6},
	}))
	if fs := r.sync(); len(fs) != 0 {
		t.Fatalf("answered within the grace: %d frames", len(fs))
	}
	dialGap(t, s, "A", "back", wire.VersionGaps, 5).sync()
	f := r.next()
	at := time.Now()
	if f.Type != wire.TypeGone {
		t.Fatalf("got %s, want gone", wire.TypeName(f.Type))
	}
	if up := at.Sub(s.started); up < resumeGrace {
		t.Fatalf("answered %v after the start, within the grace (%v)", up, resumeGrace)
	}
	got, err := wire.ParseRefs(nil, f.Payload, maxWatched)
	if err != nil || len(got) != 1 || got[0].Agent != "dead" {
		t.Fatalf("Gone %+v, %v; want only dead", got, err)
	}
}

// A connection that ends with an answer pending stops its timer: nothing
// is left running (goleak checks) and nothing is sent.
func TestWatchPendingStops(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1)
	r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: "x", Stream: 1}}))
	r.sync()
	r.nc.Close()
	waitUntil(t, "r gone", func() bool { _, ok := s.Agent("A", "r"); return !ok })
}

// A StreamEnd goes past a full outbox, up to twice outbuffer; past that
// it is not queued and is counted.
func TestStreamEndPastBoundCounted(t *testing.T) {
	s := gapServer(t, func(bus *config.Config) { bus.OutBuffer = 64 << 10 })
	dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n") // reads nothing from now on
	fill := dialGap(t, s, "A", "fill", wire.VersionGaps, 2)
	// Fill the pipe to r (4 MiB), where its writer then blocks, and its
	// outbox up to the bound.
	big := make([]byte, 30<<10)
	for i := 0; ; i++ {
		fill.write(wire.AppendSeqMsg(nil, 2, 1, &wire.Msg{Channel: "A", Agent: "fill", Event: "n", Data: big}))
		fill.sync()
		// Past the 4 MiB the pipe holds, the writer is stuck.
		if info, _ := s.Agent("A", "r"); info.Queued > 32<<10 && info.MsgsOut*(30<<10) > 4<<20 {
			break
		}
		if i == 1000 {
			t.Fatal("r's outbox does not fill")
		}
	}
	long := strings.Repeat("x", 64)
	frame := len(wire.AppendStreamEnd(nil, wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: long}}))
	senders := 2*(64<<10)/frame + 10
	for i := range senders {
		id := fmt.Sprintf("%04d%s", i, long[4:])
		g := dialGap(t, s, "A", id, wire.VersionGaps, uint32(i))
		g.write(wire.AppendStream(nil, uint32(i), 1))
		g.sync()
		g.nc.Close()
	}
	waitUntil(t, "the senders gone", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == 2 })
	ci, _ := s.Channel("A")
	info, _ := s.Agent("A", "r")
	t.Logf("%d senders; StreamEnds %d queued, %d dropped; r holds %d bytes (outbuffer %d), out %d dropped %d", senders, ci.StreamEnds, ci.StreamEndsDropped, info.Queued, 64<<10, info.MsgsOut, info.Dropped)
	if ci.StreamEndsDropped == 0 {
		t.Fatalf("StreamEnds %d queued, none dropped", ci.StreamEnds)
	}
	if info.Queued > 2*(64<<10)+frame {
		t.Fatalf("r holds %d bytes, past twice outbuffer", info.Queued)
	}
	if info.Queued < 2*(64<<10)-frame {
		t.Fatalf("r holds %d bytes: StreamEnds dropped before twice outbuffer", info.Queued)
	}
}
