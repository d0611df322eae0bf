//go:build linux

package server

import (
	"testing"
	"time"
)

// Once the server had dropped one message for a legacy agent, dropped !=
// told for ever (a legacy agent is never told: appendDroppedLocked is
// native-only), so droppingLocked stayed true and no round waited for that
// agent again, even after it read everything and had a message queued: an
// Ack was sent for a message still in its outbox, which a crash then lost.
func TestAckWaitsForLegacyAfterDrop(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	server, _ := unixPair(t)
	r := newConn(ch, server)
	r.toLegacy()
	ch.mu.Lock()
	ch.conns[r] = struct{}{}
	ch.mu.Unlock()
	r.omu.Lock()
	r.joined.Store(true)
	r.omu.Unlock()
	r.ackMark()
	t.Cleanup(func() { ch.leave(r); r.ackForget() })
	for i := 0; r.dropped.Load() == 0; i++ {
		if i > 1000 {
			t.Fatal("no drop")
		}
		r.deliver(&delivery{raw: frame, v: &v})
	}
	// The agent reads all: the writer takes and writes its outbox.
	q := outboxQueue{r}
	for {
		b, _ := q.Take(nil)
		if len(b) == 0 {
			break
		}
		q.Wrote(b, len(b), nil)
	}
	// A new message, queued, not written.
	r.deliver(&delivery{raw: frame, v: &v})
	a := &acker{}
	a.addChan(ch)
	a.snapshot()
	a.poll(time.Now())
	r.omu.Lock()
	dropping := r.droppingLocked()
	queued := len(r.obuf)
	r.omu.Unlock()
	if len(a.wait) != 1 {
		t.Fatalf("a round waits for %d agents; want the legacy agent with %d bytes queued (droppingLocked %v, dropped %d told %d)", len(a.wait), queued, dropping, r.dropped.Load(), r.told)
	}
}
