package netcluster

import (
	"bytes"
	"slices"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestOriginsWatch: the origins watched are those received from whose
// connection has not been told ended; a StreamEnd ends one unless the
// stream has gone past its number; a new message revives an ended one;
// Gone reports a watched one once, with the last number received.
func TestOriginsWatch(t *testing.T) {
	var o origins
	ch := []byte("A")
	o.fresh(ch, []byte("s"), 7, 1)
	o.fresh(ch, []byte("s"), 7, 5)
	o.fresh(ch, []byte("t"), 8, 3)
	o.fresh(ch, []byte("u"), 9, 2)
	watched := func() []string {
		var names []string
		for f := range wire.Frames(o.appendWatch(nil, 1<<20)) {
			refs, err := wire.ParseRefs(nil, f.Payload, maxOrigins)
			if err != nil || f.Type != wire.TypeWatch {
				t.Fatalf("a %s frame, %v", wire.TypeName(f.Type), err)
			}
			for _, r := range refs {
				names = append(names, r.Agent)
			}
		}
		slices.Sort(names)
		return names
	}
	if got := watched(); !slices.Equal(got, []string{"s", "t", "u"}) {
		t.Fatalf("watched %v", got)
	}
	s := wire.StreamRef{Channel: "A", Agent: "s", Stream: 7}
	o.end(wire.StreamEnd{StreamRef: s, Seq: 4})                                                     // of an earlier connection: the stream is past it
	o.end(wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: "t", Stream: 99}, Seq: 10}) // another stream
	if got := watched(); !slices.Equal(got, []string{"s", "t", "u"}) {
		t.Fatalf("after StreamEnds that do not apply: watched %v", got)
	}
	o.end(wire.StreamEnd{StreamRef: s, Seq: 5})
	if got := watched(); !slices.Equal(got, []string{"t", "u"}) {
		t.Fatalf("after s ended: watched %v", got)
	}
	if _, ok := o.gone(s); ok {
		t.Fatal("an ended origin reported gone")
	}
	if ok, _ := o.fresh(ch, []byte("s"), 7, 5); ok {
		t.Fatal("a duplicate after the StreamEnd taken as new")
	}
	if got := watched(); !slices.Equal(got, []string{"t", "u"}) {
		t.Fatalf("a duplicate revived s: watched %v", got)
	}
	o.fresh(ch, []byte("s"), 7, 6) // it came back with its stream
	if got := watched(); !slices.Equal(got, []string{"s", "t", "u"}) {
		t.Fatalf("after s came back: watched %v", got)
	}
	tr := wire.StreamRef{Channel: "A", Agent: "t", Stream: 8}
	if last, ok := o.gone(tr); !ok || last != 3 {
		t.Fatalf("gone(t) = %d, %v; want 3, true", last, ok)
	}
	if _, ok := o.gone(tr); ok {
		t.Fatal("t reported gone twice")
	}
	if _, ok := o.gone(wire.StreamRef{Channel: "A", Agent: "u", Stream: 1}); ok {
		t.Fatal("gone for another stream of u")
	}
	if got := watched(); !slices.Equal(got, []string{"s", "u"}) {
		t.Fatalf("at the end: watched %v", got)
	}
}

// TestWatchFramesFitMaxFrame: the Watch frames of many origins are each
// within the server's maximum frame, and list every origin once.
func TestWatchFramesFitMaxFrame(t *testing.T) {
	var o origins
	long := bytes.Repeat([]byte("a"), 200)
	for i := range maxOrigins {
		o.fresh([]byte("A"), append(long, byte('0'+i%10), byte('0'+i/10%10), byte('0'+i/100%10), byte('0'+i/1000)), 1, 1)
	}
	const maxFrame = 1024
	buf := o.appendWatch(nil, maxFrame)
	frames, n := 0, 0
	for f := range wire.Frames(buf) {
		frames++
		if len(f.Raw)-wire.LenSize > maxFrame {
			t.Fatalf("a Watch of %d bytes, the limit is %d", len(f.Raw)-wire.LenSize, maxFrame)
		}
		refs, err := wire.ParseRefs(nil, f.Payload, maxOrigins)
		if err != nil {
			t.Fatal(err)
		}
		n += len(refs)
	}
	if n != maxOrigins || wire.WholeLen(buf) != len(buf) {
		t.Fatalf("%d origins in %d frames, want %d", n, frames, maxOrigins)
	}
}

// TestOriginsRestartedSender: a message of a new stream from an origin
// watched (not told ended) gives the notice of the old stream; from one
// whose StreamEnd came, or from a new origin, none.
func TestOriginsRestartedSender(t *testing.T) {
	var o origins
	ch := []byte("A")
	if _, gap := o.fresh(ch, []byte("s"), 7, 1); gap != nil {
		t.Fatalf("a new origin: %v", gap)
	}
	o.fresh(ch, []byte("s"), 7, 4)
	ok, gap := o.fresh(ch, []byte("s"), 8, 1)
	if want := (GapError{Channel: "A", Agent: "s", Stream: 7, LastSeq: 4}); !ok || gap == nil || *gap != want {
		t.Fatalf("restarted while watched: %v, %+v; want true, %+v", ok, gap, want)
	}
	o.end(wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: "s", Stream: 8}, Seq: 1})
	if _, gap := o.fresh(ch, []byte("s"), 9, 1); gap != nil {
		t.Fatalf("restarted after its StreamEnd: %v", gap)
	}
}

// TestOriginsEndWithGap: a StreamEnd saying the connection ended before
// the sender sent again numbers up to Announced gives the notice to a
// receiver below Announced, once it is past what was routed, not to one
// that had them all.
func TestOriginsEndWithGap(t *testing.T) {
	s := wire.StreamRef{Channel: "A", Agent: "s", Stream: 7}
	for _, tc := range []struct {
		last      uint64
		end       wire.StreamEnd
		gap, ends bool
	}{
		{17, wire.StreamEnd{StreamRef: s, Seq: 17, Announced: 20}, true, true},
		{15, wire.StreamEnd{StreamRef: s, Seq: 17, Announced: 20}, true, true}, // 16, 17 not for it
		{18, wire.StreamEnd{StreamRef: s, Seq: 17, Announced: 20}, true, true}, // 18 from the old server
		{20, wire.StreamEnd{StreamRef: s, Seq: 17, Announced: 20}, false, true},
		{17, wire.StreamEnd{StreamRef: s, Seq: 20}, false, true},
		{21, wire.StreamEnd{StreamRef: s, Seq: 17, Announced: 20}, false, false}, // an earlier connection's
	} {
		var o origins
		o.fresh([]byte("A"), []byte("s"), 7, tc.last)
		gap := o.end(tc.end)
		if (gap != nil) != tc.gap || gap != nil && gap.LastSeq != tc.last {
			t.Errorf("at %d, %+v: notice %+v, want one: %v", tc.last, tc.end, gap, tc.gap)
		}
		if ended := o.find("A", "s").ended; ended != tc.ends {
			t.Errorf("at %d, %+v: ended %v, want %v", tc.last, tc.end, ended, tc.ends)
		}
	}
}
