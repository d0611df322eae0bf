package server

import (
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// stuckMember returns a member of group "g" for "ev" on ch whose writer
// runs into a stuckSink, its outbox one message short of three quarters
// of the bound: the next message it takes makes it nearly full.
func stuckMember(t *testing.T, s *Server, ch *channel, frame []byte, v *wire.MsgView) *conn {
	t.Helper()
	r := newConn(ch, newStuckSink())
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	t.Cleanup(r.close)
	r.deliver(&delivery{raw: frame, v: v})
	waitUntil(t, "the writer takes a frame it cannot write", func() bool {
		r.omu.Lock()
		defer r.omu.Unlock()
		return len(r.obuf) == 0
	})
	size := wire.HeaderLen + wire.QueueMsgOverhead + len(frame) - wire.LenSize
	for {
		r.omu.Lock()
		next := r.queuedLocked() + size
		r.omu.Unlock()
		if next > s.limits.Load().outBuffer/4*3 {
			break
		}
		r.deliver(&delivery{raw: frame, v: v})
	}
	if err := ch.queues.Join(r, 1, "g", "ev"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.queues.LeaveAll(r) })
	return r
}

// A queue group member that becomes nearly full costs the sender no
// pause while another member may have room: the stream goes on to the
// others, the full one passed over. Once no member has room, the sender
// pauses for the one that took the message, as for a plain listener.
func TestQueueFullMemberNotWaitedFor(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	src := newConn(ch, sink{})
	a := stuckMember(t, s, ch, frame, &v)
	b := stuckMember(t, s, ch, frame, &v)
	pausedFor := func(r *conn) bool {
		r.omu.Lock()
		defer r.omu.Unlock()
		return r.stalls > 0 || r.waits > 0
	}
	ch.route(src, frame, &v) // a's turn: it takes it and is nearly full; b has room
	if a.queuedIn.Load() != 1 || b.queuedIn.Load() != 0 {
		t.Fatalf("queued for a %d, for b %d; want 1 and 0", a.queuedIn.Load(), b.queuedIn.Load())
	}
	if pausedFor(a) {
		t.Fatal("the sender paused for a nearly full member while another had room")
	}
	ch.route(src, frame, &v) // b's turn: it takes it and is nearly full too
	if b.queuedIn.Load() != 1 {
		t.Fatalf("queued for b %d, want 1", b.queuedIn.Load())
	}
	ch.route(src, frame, &v) // no member has room: a's turn, forced
	if a.queuedIn.Load() != 2 {
		t.Fatalf("queued for a %d, want 2", a.queuedIn.Load())
	}
	if !pausedFor(a) {
		t.Fatal("the sender did not pause with every member of the group nearly full")
	}
}
