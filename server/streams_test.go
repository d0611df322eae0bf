package server

import (
	"bufio"
	"context"
	"encoding/binary"
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
// no message on the connection, else the last it sent; when it had
// numbered messages before it connected that it did not send again (the
// connection ended first), the last it sent or had acknowledged, with the
// number announced (a gap).
func TestStreamEndNumber(t *testing.T) {
	s := gapServer(t, nil)
	s.started = time.Now().Add(-time.Minute) // a resumed stream is not held
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1, "n")
	r.sync()
	for _, tc := range []struct {
		name                 string
		seq, acked, from, to uint64
		want                 wire.StreamEnd
	}{
		{"announced, nothing sent", 41, 41, 1, 0, wire.StreamEnd{Seq: 41}},
		{"sent again in full", 20, 14, 15, 20, wire.StreamEnd{Seq: 20}},
		{"sent again and more", 20, 14, 15, 25, wire.StreamEnd{Seq: 25}},
		{"ended mid-resend", 20, 14, 15, 17, wire.StreamEnd{Seq: 17, Announced: 20}},
		{"ended before any", 20, 14, 1, 0, wire.StreamEnd{Seq: 14, Announced: 20}},
	} {
		snd := dialGap(t, s, "A", "snd", wire.VersionGaps, 9)
		snd.write(wire.AppendStreamAcked(nil, 9, tc.seq, tc.acked)) // again, the same stream: allowed
		snd.write(seqMsgs("A", "snd", 9, tc.from, tc.to))
		snd.sync()
		snd.nc.Close()
		var e wire.StreamEnd
		for deadline := time.Now().Add(10 * time.Second); e.Stream == 0; {
			for _, f := range r.sync() {
				if f.Type == wire.TypeStreamEnd {
					var err error
					if e, err = wire.ParseStreamEnd(f.Payload); err != nil {
						t.Fatal(err)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no StreamEnd", tc.name)
			}
		}
		tc.want.StreamRef = wire.StreamRef{Channel: "A", Agent: "snd", Stream: 9}
		if e != tc.want {
			t.Errorf("%s: StreamEnd %+v, want %+v", tc.name, e, tc.want)
		}
	}
}

// A Stream comes before the connection's first SeqMsg, and every SeqMsg
// is of the stream announced: anything else is Error 3.
func TestStreamOutOfPlace(t *testing.T) {
	s := gapServer(t, nil)
	s.started = time.Now().Add(-time.Minute)
	ackedAbove := wire.AppendHeader(nil, wire.TypeStream, 20) // AppendStreamAcked writes no such frame
	ackedAbove = binary.BigEndian.AppendUint32(ackedAbove, 5)
	ackedAbove = binary.BigEndian.AppendUint64(ackedAbove, 2)
	ackedAbove = binary.BigEndian.AppendUint64(ackedAbove, 3)
	for _, tc := range []struct {
		name, want string
		code       uint16
		frames     []byte
	}{
		{"stream after a seqmsg", "announced after", wire.CodeProtocol, append(seqMsgs("A", "x", 5, 1, 1), wire.AppendStream(nil, 5, 1)...)},
		{"seqmsg of another stream", "this connection announced stream 00000005", wire.CodeProtocol, seqMsgs("A", "x", 6, 1, 1)},
		{"acked above seq", "acked 3 above seq 2", wire.CodeMalformed, ackedAbove},
	} {
		g := dialGap(t, s, "A", "x", wire.VersionGaps, 5)
		frames, code := tc.frames, tc.code
		g.write(frames)
		var f wire.Frame
		for f = g.next(); f.Type != wire.TypeError; f = g.next() {
		}
		if e, _ := wire.ParseError(f.Payload); e.Code != code || !strings.Contains(e.Text, tc.want) {
			t.Errorf("%s: Error %d %q, want %d containing %q", tc.name, e.Code, e.Text, code, tc.want)
		}
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

// A connection that ends with an answer pending stops its timer and
// gives back its entries: nothing is left held (and, goleak checks,
// running).
func TestWatchPendingStops(t *testing.T) {
	s := gapServer(t, nil)
	r := dialGap(t, s, "A", "r", wire.VersionGaps, 1)
	r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: "x", Stream: 1}, {Channel: "B", Agent: "y", Stream: 2}}))
	r.sync()
	if n := s.watchPending.Load(); n != 2 {
		t.Fatalf("%d entries held within the grace, want 2", n)
	}
	r.nc.Close()
	waitUntil(t, "r gone", func() bool { _, ok := s.Agent("A", "r"); return !ok })
	if n := s.watchPending.Load(); n != 0 {
		t.Fatalf("%d entries still held after the connection ended", n)
	}
}

// The grace goes on while agents join (resumeQuiet after the last): a
// Watch's answer due at the grace's end waits for the agents joining
// then, and finds them connected.
func TestWatchWaitsForLateJoin(t *testing.T) {
	s := gapServer(t, nil)
	s.started = time.Now().Add(-5 * time.Second) // past resumeGrace: only joins hold the grace
	for attempt := 0; ; attempt++ {
		late := fmt.Sprint("late", attempt)
		r := dialGap(t, s, "A", fmt.Sprint("r", attempt), wire.VersionGaps, 1)
		r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: late, Stream: 5}, {Channel: "A", Agent: "dead", Stream: 6}}))
		r.sync()
		due := time.Unix(0, s.lastJoin.Load()).Add(resumeQuiet) // r's own join
		time.Sleep(resumeQuiet / 2)
		dialGap(t, s, "A", late, wire.VersionGaps, 5).sync()
		joined := time.Unix(0, s.lastJoin.Load())
		f := r.next()
		at := time.Now()
		if !joined.Before(due) {
			// The machine was too slow to join before the first answer
			// was due: try again.
			if attempt == 5 {
				t.Fatal("could not join before the answer was due in 6 attempts")
			}
			continue
		}
		if f.Type != wire.TypeGone {
			t.Fatalf("got %s, want gone", wire.TypeName(f.Type))
		}
		if quiet := joined.Add(resumeQuiet); at.Before(quiet) {
			t.Fatalf("answered %v before the grace's end after the late join", quiet.Sub(at))
		}
		got, err := wire.ParseRefs(nil, f.Payload, maxWatched)
		if err != nil || len(got) != 1 || got[0].Agent != "dead" {
			t.Fatalf("Gone %+v, %v; want only dead", got, err)
		}
		return
	}
}

// A Watch entry must name an agent id an agent could have; within the
// grace, an entry of a channel the server does not serve is answered at
// once (nothing can come back to it), the others at the grace's end; and
// past maxPendingWatches held server-wide, a Watch is answered at once,
// counted.
func TestWatchEntriesChecked(t *testing.T) {
	s := gapServer(t, nil)
	bad := dialGap(t, s, "A", "bad", wire.VersionGaps, 1)
	long := strings.Repeat("a", 255)
	bad.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: "ok", Stream: 1}, {Channel: "A", Agent: long, Stream: 2}}))
	f := bad.next()
	if e, _ := wire.ParseError(f.Payload); f.Type != wire.TypeError || e.Code != wire.CodeMalformed || !strings.Contains(e.Text, "invalid agent id \"aaaa") {
		t.Fatalf("a 255-byte agent id: %s %+v, want Error 1 naming it", wire.TypeName(f.Type), e)
	}

	r := dialGap(t, s, "A", "r", wire.VersionGaps, 2)
	r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: "dead", Stream: 1}, {Channel: "Z", Agent: "x", Stream: 2}}))
	fs := r.sync()
	if len(fs) != 1 || fs[0].Type != wire.TypeGone {
		t.Fatalf("within the grace: %d frames, want the Gone of channel Z", len(fs))
	}
	if got, _ := wire.ParseRefs(nil, fs[0].Payload, maxWatched); len(got) != 1 || got[0].Channel != "Z" {
		t.Fatalf("Gone at once %+v, want channel Z's entry", got)
	}
	if n := s.watchPending.Load(); n != 1 {
		t.Fatalf("%d entries held, want 1 (A's)", n)
	}

	s.watchPending.Add(maxPendingWatches) // as if others held the rest
	defer s.watchPending.Add(-maxPendingWatches)
	r.write(wire.AppendRefs(nil, wire.TypeWatch, []wire.StreamRef{{Channel: "B", Agent: "gone", Stream: 3}}))
	fs = r.sync()
	if len(fs) != 1 || fs[0].Type != wire.TypeGone {
		t.Fatalf("past the bound: %d frames, want a Gone at once", len(fs))
	}
	if ci, _ := s.Channel("A"); ci.WatchesEarly != 1 {
		t.Fatalf("watches_early %d, want 1", ci.WatchesEarly)
	}
}
