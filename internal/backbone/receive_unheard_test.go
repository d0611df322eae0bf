package backbone

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"strconv"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// unheardReceiver is a durable consumer's receiver whose server hears
// frames while hear > 0 (one frame each) and, once hear is spent, reports
// that no one listens if gone: a listener that leaves during a delivery.
type unheardReceiver struct {
	r    *receiver
	got  []string // the data of the frames heard, in order
	hear int
	gone bool
}

func newUnheardReceiver(t *testing.T) *unheardReceiver {
	t.Helper()
	u := &unheardReceiver{hear: 1 << 30}
	b := &Backbone{subj: newSubjects("netcluster", "default")}
	b.cfg.MaxMessage = 1 << 20
	b.warn.log = slog.New(slog.DiscardHandler)
	b.deliver = func(_ NodeID, frames []byte, _ Stream) (heard int) {
		for f := range wire.Frames(frames) {
			if u.hear == 0 {
				break
			}
			u.hear--
			v, err := wire.ParseMsg(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			u.got = append(u.got, string(v.Data))
			heard += len(f.Raw)
		}
		return heard
	}
	u.r = newReceiver(b)
	u.r.holdGaps, u.r.gapWait = true, gapWait
	u.r.listening = func() bool { return !u.gone }
	return u
}

// handle hands env to the receiver and returns its unheard.
func (u *unheardReceiver) handle(t *testing.T, env []byte) bool {
	t.Helper()
	subj := u.r.b.subj.event("D", "n")
	ok, retry, unheard := u.r.handle(subj, "D", env)
	if !ok || retry {
		t.Fatalf("handle: ok %v, retry %v", ok, retry)
	}
	return unheard
}

// back is a listener back: everything is heard again.
func (u *unheardReceiver) back() { u.hear, u.gone = 1<<30, false }

func (u *unheardReceiver) check(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(u.got, want) {
		t.Errorf("heard %q, want %q", u.got, want)
	}
	st := u.r.b.Stats()
	if st.Duplicates != 0 || st.Lost != 0 || st.MsgsIn != uint64(len(want)) {
		t.Errorf("duplicates %d, lost %d, in %d; want 0, 0, %d", st.Duplicates, st.Lost, st.MsgsIn, len(want))
	}
}

func numberedFrames(from, to int) [][]byte {
	var fs [][]byte
	for i := from; i < to; i++ {
		ev := "n"
		if i%2 == 1 {
			ev = "m" // not one stream: the server walks them
		}
		fs = append(fs, frame("D", "a", ev, []byte(strconv.Itoa(i))))
	}
	return fs
}

// A batch whose last listener left after its second frame: the rest is
// not delivered, and when the batch comes again only the rest is, once,
// in order; the next batch follows without a gap or a duplicate.
func TestReceiveUnheardBatch(t *testing.T) {
	t.Parallel()
	u := newUnheardReceiver(t)
	node := NodeID{7}
	if u.handle(t, batchEnv(node, 1, numberedFrames(0, 3)...)) {
		t.Fatal("a batch heard whole reported unheard")
	}
	u.hear, u.gone = 2, true
	env := batchEnv(node, 4, numberedFrames(3, 9)...)
	if !u.handle(t, env) {
		t.Fatal("a batch heard in part was not reported unheard")
	}
	u.back()
	if u.handle(t, env) {
		t.Fatal("the batch again, heard, reported unheard")
	}
	if u.handle(t, batchEnv(node, 10, numberedFrames(9, 11)...)) {
		t.Fatal("the next batch reported unheard")
	}
	u.check(t, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
}

// A batch no frame of which was heard, the publisher's first: it comes
// again whole. And one heard by no one while someone listens (its events
// match no listener) is delivered, not sent back: it comes again only as
// a duplicate.
func TestReceiveUnheardWhole(t *testing.T) {
	t.Parallel()
	u := newUnheardReceiver(t)
	node := NodeID{7}
	u.hear, u.gone = 0, true
	env := batchEnv(node, 1, numberedFrames(0, 4)...)
	if !u.handle(t, env) {
		t.Fatal("a batch heard by no one was not reported unheard")
	}
	u.back()
	u.handle(t, env)
	u.hear = 0 // unmatched, the listener still there
	msg := append(appendEnvHeader(nil, kindMsg, node, 1, 5), frame("D", "a", "x", []byte("4"))...)
	if u.handle(t, msg) {
		t.Fatal("a message no one matched, with a listener there, reported unheard")
	}
	u.back()
	u.handle(t, msg)
	if want := []string{"0", "1", "2", "3"}; !slices.Equal(u.got, want) {
		t.Errorf("heard %q, want %q", u.got, want)
	}
	if st := u.r.b.Stats(); st.Duplicates != 1 || st.Lost != 0 || st.MsgsIn != 5 {
		t.Errorf("duplicates %d, lost %d, in %d; want 1 (the unmatched one again), 0, 5", st.Duplicates, st.Lost, st.MsgsIn)
	}
}

// A single message and a message in pieces whose listener left: each
// comes again and is delivered then, once.
func TestReceiveUnheardMsgAndPieces(t *testing.T) {
	t.Parallel()
	u := newUnheardReceiver(t)
	node := NodeID{7}
	msg := append(appendEnvHeader(nil, kindMsg, node, 1, 1), frame("D", "a", "n", []byte("0"))...)
	u.hear, u.gone = 0, true
	if !u.handle(t, msg) {
		t.Fatal("a message heard by no one was not reported unheard")
	}
	u.back()
	u.handle(t, msg)

	big := frame("D", "a", "n", []byte("1"+string(make([]byte, 1000))))
	piece := func(off int) []byte {
		b := appendEnvHeader(nil, kindChunk, node, 1, 2)
		b = binary.BigEndian.AppendUint32(b, uint32(len(big)))
		b = binary.BigEndian.AppendUint32(b, uint32(off))
		return append(b, big[off:min(off+400, len(big))]...)
	}
	for off := 0; off < 800; off += 400 {
		if u.handle(t, piece(off)) {
			t.Fatal("a first piece reported unheard")
		}
	}
	u.hear, u.gone = 0, true
	if !u.handle(t, piece(800)) {
		t.Fatal("the last piece, heard by no one, was not reported unheard")
	}
	u.back()
	u.handle(t, piece(800))
	if len(u.got) != 2 || u.got[1] != "1"+string(make([]byte, 1000)) {
		t.Fatalf("heard %d messages, want 2, the second the whole large one", len(u.got))
	}
	u.got[1] = "1"
	u.check(t, "0", "1")
	if h := u.r.parts.held; h != 0 {
		t.Errorf("reassembly holds %d bytes after the message", h)
	}
}
