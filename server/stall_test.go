package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A recipient that drains, however slowly, is waited for, not dropped for:
// the pauses it costs its sender are pacing, and a pause that ends before
// it made progress is given back when it does. Here the sender is much
// faster than its recipient for 40 of its batches, more than the sender's
// credit in pauses; the recipient loses nothing. Its messages are small,
// as with the default outbuffer: the quarter of the outbox above which
// the sender pauses holds more of them (140) than the recipient has
// pauses before it runs out of them (100). With 1,000-byte messages it
// held 16, 80 ms of pauses: a 20 ms write that ended 60 ms late (its
// writer waiting for a CPU on a loaded machine) overflowed the outbox with
// pauses left, whatever the refunds (the test failed so once in CI).
func TestStallDrainingRecipientNotDropped(t *testing.T) {
	s, ch, _, _ := stallServer(t)
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 100)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	src := newConn(ch, sink{})
	r := newConn(ch, slowSink{delay: 20 * time.Millisecond}) // reads, slowly
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	t.Cleanup(r.close)
	batches := r.progress.Load()
	for r.progress.Load()-batches < 40 {
		if r.deliver(&delivery{raw: frame, v: &v}) {
			src.stall(r)
		}
	}
	if n := r.dropped.Load(); n > 0 {
		t.Fatalf("%d messages dropped for a recipient that kept draining (%d delivered)", n, r.delivered())
	}
}

// When a stuck recipient (its pauses in vain) and a draining one are both
// nearly full, the sender pauses for the draining one: otherwise it would
// skip the pause it owes the stuck one's spent credit, and overrun the
// one that reads.
func TestStallPrefersDrainingRecipient(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	stuck := stuckRecipient(t, s, ch, frame, &v)
	src := newConn(ch, sink{})
	src.stall(stuck) // in vain: stuck.stalls > 0
	draining := newConn(ch, slowSink{delay: 20 * time.Millisecond})
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		draining.writeLoop()
	}()
	t.Cleanup(draining.close)
	for i := 0; !draining.deliver(&delivery{raw: frame, v: &v}); i++ {
		if i > 200 {
			t.Fatal("outbox never nearly full")
		}
	}
	// The index lists the stuck one last, as the one a sender would pause for.
	for _, c := range []*conn{draining, stuck} {
		if err := ch.index.Add(c, "ev"); err != nil {
			t.Fatal(err)
		}
	}
	if full := ch.deliverLocal(src, &delivery{raw: frame, v: &v}); full != draining {
		t.Fatalf("the sender pauses for %p, want the draining recipient %p (stuck %p)", full, draining, stuck)
	}
}

// A sender whose credit stuck agents have spent still pauses for a
// recipient that has read a lot (provenBytes) for provenFree after each
// of its progress, and not for one that never read.
func TestStallProvenReaderWithoutCredit(t *testing.T) {
	s, ch, frame, v := stallServer(t)
	src := newConn(ch, sink{})
	src.sending().credit.left = -stallBudget // spent by stuck agents
	pauses := func(r *conn) int {
		n := 0
		for range 4 {
			start := time.Now()
			src.stall(r)
			if time.Since(start) >= stallMax/2 {
				n++
			}
		}
		return n
	}
	stuck := stuckRecipient(t, s, ch, frame, &v)
	n := pauses(stuck)
	stuck.omu.Lock()
	charged := stuck.stalls / stallMax // a call the machine delayed is not a pause
	stuck.omu.Unlock()
	if n < 1 || charged != 1 {
		t.Fatalf("an agent that never read: %d pauses without credit (%d long calls), want 1 (the first)", charged, n)
	}
	reader := stuckRecipient(t, s, ch, frame, &v) // short of CPU now
	reader.omu.Lock()
	reader.wrote = provenBytes // but it read a lot before
	reader.omu.Unlock()
	if n := pauses(reader); n != 4 {
		t.Fatalf("an agent that has read %d bytes: %d of 4 pauses without credit", provenBytes, n)
	}
}
