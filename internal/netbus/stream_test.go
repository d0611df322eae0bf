package netbus

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The stream is pure code: these tests feed it datagrams and ticks with
// the time given, no Bus, socket or goroutine, and read what it delivered,
// the NAKs it asked for, its counters and its log.

var t0 = time.Unix(1_700_000_000, 0)

// streamRig is one stream (or several sharing an env) under test.
type streamRig struct {
	cfg     Config
	env     streamEnv
	from    Peer
	streams []*stream
	log     strings.Builder
	naks    []string // what each tick asked for, e.g. "2-3,7"; ticks that asked nothing are left out
}

const rigEpoch = uint64(1_700_000_000_000_000_000)

func newRig(t *testing.T, n int, mod func(*Config)) *streamRig {
	t.Helper()
	r := &streamRig{cfg: Config{NakDelay: 5 * time.Millisecond, NakInterval: 10 * time.Millisecond, NakRetries: 3,
		ReassemblyTimeout: time.Second}}
	if mod != nil {
		mod(&r.cfg)
	}
	if err := r.cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	r.from = Peer{ID: NodeID{1}, Name: "peer"}
	r.env = streamEnv{cfg: &r.cfg, epoch: rigEpoch, log: slog.New(slog.NewTextHandler(&r.log, nil)), chans: map[string]string{},
		all: func(yield func(*stream) bool) {
			for _, s := range r.streams {
				if !yield(s) {
					return
				}
			}
		}}
	for range n {
		s := newStream(&r.env, &r.from, rigEpoch) // same session start as ours: followed from sequence 1
		r.streams = append(r.streams, &s)
	}
	return r
}

// step is one event fed to stream 0 (or the stream it names).
type step func(r *streamRig)

// data is a DATA datagram of sequence seq carrying messages msg, msg+1, …
func data(seq, msg uint64, frames ...string) step { return dataTo(0, seq, msg, frames...) }

func dataTo(i int, seq, msg uint64, frames ...string) step { return dataAt(i, 0, seq, msg, frames...) }

// dataAt is dataTo arriving at t0+at.
func dataAt(i int, at time.Duration, seq, msg uint64, frames ...string) step {
	return func(r *streamRig) {
		d := datagram{header: header{Version: datagramVersion, Kind: kindData, Seq: seq}, Data: dataBody{FirstMsg: msg}}
		for _, f := range frames {
			d.Data.Records = append(d.Data.Records, record{"A", []byte(f)})
		}
		r.feedAt(i, &d, t0.Add(at))
	}
}

// frag is fragment fi of fc of message msg (total bytes), carrying chunk.
func frag(seq, msg uint64, fi, fc uint16, total uint32, chunk string) step {
	return func(r *streamRig) {
		d := datagram{header: header{Version: datagramVersion, Kind: kindFrag, Seq: seq, FragIndex: fi, FragCount: fc},
			Frag: fragBody{Msg: msg, Total: total, Channel: "A", Chunk: []byte(chunk)}}
		r.feed(0, &d)
	}
}

// beat is a heartbeat: last sequence sent, oldest still held, next message.
func beat(last, oldest, nextMsg uint64) step {
	return func(r *streamRig) {
		r.streams[0].onBeat(&beatBody{LastSeq: last, Oldest: oldest, NextMsg: nextMsg}, t0)
		r.streams[0].tailAccount()
	}
}

// tick runs the Bus's tick for every stream at t0+at: NAKs, then expiry.
func tick(at time.Duration) step {
	return func(r *streamRig) {
		for _, s := range r.streams {
			if rs := s.dueNaks(t0.Add(at), false); len(rs) > 0 {
				r.naks = append(r.naks, rangesString(rs))
			}
			s.expire(t0.Add(at))
		}
	}
}

// ticks runs tick every d up to and including until.
func ticks(d, until time.Duration) step {
	return func(r *streamRig) {
		for at := d; at <= until; at += d {
			tick(at)(r)
		}
	}
}

// end ends stream 0's session at t0+at.
func end(at time.Duration) step { return func(r *streamRig) { r.streams[0].end(t0.Add(at)) } }

func (r *streamRig) feed(i int, d *datagram) { r.feedAt(i, d, t0) }

func (r *streamRig) feedAt(i int, d *datagram, now time.Time) {
	b, err := encodeDatagram(d)
	if err != nil {
		panic(err)
	}
	h, _ := decodeHeader(b)
	r.streams[i].onData(h, b[headerLen:], now)
	r.streams[i].tailAccount()
}

// delivered is what the streams delivered so far, in order.
func (r *streamRig) delivered() []string {
	var out []string
	for _, d := range r.env.out {
		out = append(out, string(d.frame))
	}
	return out
}

func rangesString(rs []seqRange) string {
	var parts []string
	for _, r := range rs {
		if r.First == r.Last {
			parts = append(parts, fmt.Sprint(r.First))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
	}
	return strings.Join(parts, ",")
}

func TestStream(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		steps   []step
		want    []string    // delivered frames, in order
		st      streamStats // counters at the end
		naks    []string    // NAKs asked, tick by tick
		next    uint64      // the stream's next sequence at the end
		pending int         // bytes held at the end
		logs    []string    // substrings the log must hold
	}{
		{
			name:  "in-order",
			steps: []step{data(1, 0, "a", "b"), data(2, 2, "c")},
			want:  []string{"a", "b", "c"}, st: streamStats{Delivered: 3}, next: 3,
		},
		{
			name:  "reorder",
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), data(2, 1, "b"), tick(time.Second)},
			want:  []string{"a", "b", "c"}, st: streamStats{Delivered: 3, Reordered: 1}, next: 4,
		},
		{
			name:  "late-duplicate",
			steps: []step{data(1, 0, "a"), data(2, 1, "b"), data(1, 0, "a")},
			want:  []string{"a", "b"}, st: streamStats{Delivered: 2, Late: 1}, next: 3,
		},
		{
			name:  "held-duplicate",
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), data(3, 2, "c"), data(2, 1, "b")},
			want:  []string{"a", "b", "c"}, st: streamStats{Delivered: 3, Reordered: 1}, next: 4,
		},
		{
			name: "gap-then-fill",
			steps: []step{data(1, 0, "a"), data(4, 3, "d"), tick(time.Millisecond), tick(6 * time.Millisecond),
				data(2, 1, "b"), tick(20 * time.Millisecond), data(3, 2, "c")},
			want: []string{"a", "b", "c", "d"}, st: streamStats{Delivered: 4, Recovered: 2},
			naks: []string{"2-3", "3"}, next: 5,
		},
		{
			// A long gap answered in parts: asked again only once its
			// answers stopped for a NAK interval, and its retries count
			// afresh after each answer (NakRetries is 3 here).
			name: "gap-answered-in-parts",
			steps: []step{data(1, 0, "a"), data(7, 6, "g"), tick(6 * time.Millisecond),
				dataAt(0, 12*time.Millisecond, 2, 1, "b"), tick(17 * time.Millisecond),
				dataAt(0, 20*time.Millisecond, 3, 2, "c"), tick(25 * time.Millisecond), tick(31 * time.Millisecond),
				dataAt(0, 33*time.Millisecond, 4, 3, "d"), tick(44 * time.Millisecond),
				dataAt(0, 46*time.Millisecond, 5, 4, "e"), tick(57 * time.Millisecond),
				dataAt(0, 58*time.Millisecond, 6, 5, "f"), tick(70 * time.Millisecond)},
			want: []string{"a", "b", "c", "d", "e", "f", "g"}, st: streamStats{Delivered: 7, Recovered: 5},
			naks: []string{"2-6", "4-6", "5-6", "6"}, next: 8,
		},
		{
			name:  "gap-given-up-after-retries",
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), ticks(5*time.Millisecond, 100*time.Millisecond)},
			want:  []string{"a", "c"}, st: streamStats{Delivered: 2, LostDatagrams: 1, LostMessages: 1},
			naks: []string{"2", "2", "2"}, next: 4,
			logs: []string{"unrecoverable loss", "datagrams=1 messages=1 seq_first=2 seq_last=2"},
		},
		{
			name:  "gap-no-longer-held",
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), beat(3, 3, 3)},
			want:  []string{"a", "c"}, st: streamStats{Delivered: 2, LostDatagrams: 1, LostMessages: 1}, next: 4,
		},
		{
			name:  "tail-lost",
			steps: []step{data(1, 0, "a"), beat(3, 1, 5), ticks(5*time.Millisecond, 100*time.Millisecond)},
			want:  []string{"a"}, st: streamStats{Delivered: 1, LostDatagrams: 2, LostMessages: 4},
			naks: []string{"2-3", "2-3", "2-3"}, next: 4,
		},
		{
			name: "fragments",
			steps: []step{data(1, 0, "a"), frag(2, 1, 0, 3, 5, "bc"), frag(3, 1, 1, 3, 5, "de"), frag(4, 1, 2, 3, 5, "f"),
				data(5, 2, "g")},
			want: []string{"a", "bcdef", "g"}, st: streamStats{Delivered: 3}, next: 6,
		},
		{
			name:  "fragments-reordered",
			steps: []step{frag(3, 0, 2, 3, 5, "f"), frag(1, 0, 0, 3, 5, "bc"), frag(2, 0, 1, 3, 5, "de")},
			want:  []string{"bcdef"}, st: streamStats{Delivered: 1, Reordered: 2}, next: 4,
		},
		{
			name:  "fragment-first-lost",
			steps: []step{frag(2, 0, 1, 2, 4, "cd"), data(3, 1, "x"), ticks(5*time.Millisecond, 100*time.Millisecond)},
			want:  []string{"x"}, st: streamStats{Delivered: 1, LostDatagrams: 1, LostMessages: 1},
			naks: []string{"1", "1", "1"}, next: 4,
		},
		{
			name:  "fragment-timeout",
			steps: []step{frag(1, 0, 0, 3, 5, "bc"), tick(500 * time.Millisecond), tick(1500 * time.Millisecond)},
			st:    streamStats{LostMessages: 1}, next: 2,
			logs: []string{"reassembly timed out"},
		},
		{
			name:  "fragment-too-large",
			cfg:   func(c *Config) { c.MaxMessage = 4 },
			steps: []step{frag(1, 0, 0, 2, 5, "abc"), frag(2, 0, 1, 2, 5, "de"), data(3, 1, "x")},
			want:  []string{"x"}, st: streamStats{Delivered: 1, LostMessages: 1}, next: 4,
			logs: []string{"message too large"},
		},
		{
			name:  "fragment-over-reassembly-budget",
			cfg:   func(c *Config) { c.MaxReassembly = 4 },
			steps: []step{frag(1, 0, 0, 2, 5, "abc"), frag(2, 0, 1, 2, 5, "de"), data(3, 1, "x")},
			want:  []string{"x"}, st: streamStats{Delivered: 1, LostMessages: 1}, next: 4,
		},
		{
			name:  "session-end",
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), frag(4, 3, 0, 2, 4, "de"), end(time.Second)},
			want:  []string{"a", "c"}, st: streamStats{Delivered: 2, LostDatagrams: 1, LostMessages: 2}, next: 5,
			logs: []string{"unrecoverable loss", "total_datagrams=1 total_messages=2"},
		},
		{
			// The span stays below the replay window: 2 and 3 are given up.
			name:  "span-past-window",
			steps: []step{data(1, 0, "a"), data(2+replayWindowSize, 5, "z")},
			want:  []string{"a"}, st: streamStats{Delivered: 1, LostDatagrams: 2}, next: 4, pending: 15,
		},
		{
			name:  "pending-bound",
			cfg:   func(c *Config) { c.MaxPending = 2 },
			steps: []step{data(1, 0, "a"), data(3, 2, "c"), data(5, 4, "e"), data(6, 5, "f")},
			want:  []string{"a", "c", "e", "f"}, st: streamStats{Delivered: 4, LostDatagrams: 2, LostMessages: 2}, next: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 1, tt.cfg)
			for _, s := range tt.steps {
				s(r)
			}
			s := r.streams[0]
			if got := r.delivered(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("delivered %q, want %q", got, tt.want)
			}
			if s.st != tt.st {
				t.Errorf("stats %+v, want %+v", s.st, tt.st)
			}
			if strings.Join(r.naks, " ") != strings.Join(tt.naks, " ") {
				t.Errorf("NAKs %q, want %q", r.naks, tt.naks)
			}
			if s.next != tt.next {
				t.Errorf("next %d, want %d", s.next, tt.next)
			}
			if s.pendBytes != tt.pending || r.env.pendTotal != tt.pending {
				t.Errorf("pending %d (env %d), want %d", s.pendBytes, r.env.pendTotal, tt.pending)
			}
			if s.part == nil && r.env.partTotal != 0 {
				t.Errorf("reassembly budget %d with no partial message", r.env.partTotal)
			}
			for _, l := range tt.logs {
				if !strings.Contains(r.log.String(), l) {
					t.Errorf("log lacks %q:\n%s", l, r.log.String())
				}
			}
		})
	}
}

// TestStreamStart: a peer whose session began well before ours is
// followed from what we first see of it, not from sequence 1.
func TestStreamStart(t *testing.T) {
	r := newRig(t, 1, nil)
	s := newStream(&r.env, &r.from, rigEpoch-uint64(time.Minute))
	r.streams[0] = &s
	data(500, 70, "m")(r)
	if s.next != 501 || s.st != (streamStats{Delivered: 1}) {
		t.Errorf("joined mid-stream: next %d, stats %+v; want 501, 1 delivered", s.next, s.st)
	}
	s2 := newStream(&r.env, &r.from, rigEpoch-uint64(time.Second)) // within startGrace
	r.streams[0] = &s2
	data(3, 2, "c")(r)
	if s2.next != 1 || s2.gaps.count() != 2 {
		t.Errorf("started together: next %d, %d gaps; want 1, 2", s2.next, s2.gaps.count())
	}
}

// TestStreamSharedBudgets: the streams of one env share MaxPendingTotal
// (the stream holding most gives up first) and MaxReassembly (the oldest
// partial message is dropped).
func TestStreamSharedBudgets(t *testing.T) {
	r := newRig(t, 2, func(c *Config) { c.MaxPendingTotal = 20 }) // one held datagram fits, two do not
	for _, st := range []step{dataTo(0, 1, 0, "a"), dataTo(0, 3, 2, "cc"), dataTo(1, 1, 0, "x"), dataTo(1, 3, 2, "z")} {
		st(r)
	}
	a, b := r.streams[0], r.streams[1]
	if a.pendBytes != 0 || b.pendBytes != 15 || r.env.pendTotal != 15 || a.st.LostDatagrams != 1 || b.st.LostDatagrams != 0 {
		t.Errorf("pending: a %d (lost %d), b %d, total %d; want a given up first", a.pendBytes, a.st.LostDatagrams, b.pendBytes, r.env.pendTotal)
	}

	r = newRig(t, 2, func(c *Config) { c.MaxReassembly = 8 })
	a, b = r.streams[0], r.streams[1]
	a.onData(fragHeader(1, 0, 2), fragBodyOf(0, 5, "abc"), t0)
	b.onData(fragHeader(1, 0, 2), fragBodyOf(0, 5, "xyz"), t0.Add(time.Millisecond))
	if a.part != nil || b.part == nil || r.env.partTotal != 5 || a.st.LostMessages != 1 {
		t.Errorf("reassembly: a partial %v (lost %d), b partial %v, total %d; want a's dropped", a.part != nil, a.st.LostMessages, b.part != nil, r.env.partTotal)
	}
}

func fragHeader(seq uint64, fi, fc uint16) header {
	return header{Version: datagramVersion, Kind: kindFrag, Seq: seq, FragIndex: fi, FragCount: fc}
}

func fragBodyOf(msg uint64, total uint32, chunk string) []byte {
	return append(appendFragPrefix(nil, msg, total, "A"), chunk...)
}
