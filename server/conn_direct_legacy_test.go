//go:build linux

package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A legacy agent's messages are never written in place: its writer turns
// the messages queued before its handshake ended into envelopes without
// omu (convert), and one written in place meanwhile would pass them.
func TestWriteInPlaceNotLegacy(t *testing.T) {
	_, ch, _, _ := stallServer(t)
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: []byte(`"small"`)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	server, _ := unixPair(t)
	r := newConn(ch, server)
	r.toLegacy()
	r.deliver(&delivery{raw: frame, v: &v, inPlace: inPlaceMax})
	r.omu.Lock()
	queued, wrote, takes := len(r.obuf), r.wrote, r.takes
	r.omu.Unlock()
	if queued == 0 || wrote != 0 || takes != 0 || len(r.writer().wake) != 1 {
		t.Fatalf("legacy agent: %d bytes queued, %d written, %d takes, writer woken %d; want the envelope queued for the writer, woken once",
			queued, wrote, takes, len(r.writer().wake))
	}
}

// What a legacy agent's writer has still to turn into envelopes (conv)
// is pending for acknowledgements (PROTOCOL §14: an ack means written or
// dropped): the round waits until the writer has written all of it.
func TestAcksWaitForConv(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	server, _ := unixPair(t)
	r := newConn(ch, server)
	n := convBatch/len(frame) + 2 // two chunks for convert
	r.omu.Lock()
	for range n {
		r.obuf = append(r.obuf, frame...)
	}
	r.omu.Unlock()
	r.toLegacy()
	r.deliver(&delivery{raw: frame, v: &v}) // an envelope after them, in obuf
	ch.mu.Lock()
	ch.conns[r] = struct{}{}
	ch.mu.Unlock()
	r.omu.Lock()
	r.joined.Store(true) // as join does
	r.omu.Unlock()
	r.ackMark()
	t.Cleanup(func() { ch.leave(r); r.ackForget() })

	// first is a round that looked before any write, again a round
	// that looks anew after each.
	first, again := &acker{}, &acker{}
	first.addChan(ch)
	again.addChan(ch)
	first.snapshot()
	const wantNeed = 3 // two chunks of conv, then obuf
	waits := func(a *acker) bool {
		a.poll(time.Now())
		return len(a.wait) == 1 && a.wait[0].c == r
	}
	if !waits(first) {
		t.Fatalf("before any write: not waited for; want to wait for batch %d", wantNeed)
	}
	q := outboxQueue{r}
	var envelopes int
	for i := range wantNeed {
		batch, _ := q.Take(nil)
		if len(batch) == 0 {
			t.Fatalf("take %d: nothing taken", i)
		}
		for _, b := range batch {
			if b == 0 {
				envelopes++
			}
		}
		q.Wrote(batch, len(batch), nil)
		again.snapshot()
		for name, a := range map[string]*acker{"the first round": first, "a new round": again} {
			if w := waits(a); w != (i+1 < wantNeed) {
				t.Fatalf("after batch %d of %d: %s waits %v (written %d)", i+1, wantNeed, name, w, r.batches.Load())
			}
		}
	}
	if envelopes != n+1 {
		t.Fatalf("%d envelopes written, want %d", envelopes, n+1)
	}
}

// One message is written in place to at most inPlaceMax recipients, queue
// group members among them; writers write it to the others.
func TestWriteInPlaceBoundedAcrossGroups(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	var members []*conn
	for i := range inPlaceMax + 2 {
		server, _ := unixPair(t)
		r := newConn(ch, server)
		if err := ch.queues.Join(r, 1, fmt.Sprintf("g%d", i), "ev"); err != nil {
			t.Fatal(err)
		}
		members = append(members, r)
	}
	t.Cleanup(func() {
		for _, r := range members {
			ch.queues.LeaveAll(r)
		}
	})
	ch.routeGroups(nil, &delivery{raw: frame, v: &v, inPlace: inPlaceMax})
	inPlace, queued := 0, 0
	for _, r := range members {
		r.omu.Lock()
		if r.wrote > 0 {
			inPlace++
		}
		if len(r.obuf) > 0 {
			queued++
		}
		r.omu.Unlock()
	}
	if inPlace != inPlaceMax || queued != len(members)-inPlaceMax {
		t.Fatalf("%d members written in place, %d queued for the writer; want %d and %d", inPlace, queued, inPlaceMax, len(members)-inPlaceMax)
	}
}

// Were a frame ever half written in place (it cannot be: directMax), the
// connection is closed as broken at once rather than the sender's reader
// waiting, omu held, for an agent that does not read to take the rest.
func TestWriteInPlaceHalfWrittenCloses(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	server, _ := unixPair(t)
	r := newConn(ch, server)
	for filled := 0; ; { // nobody reads the agent's end
		r.omu.Lock()
		r.obuf = append(r.obuf[:0], frame...)
		n := r.flushNowLocked()
		r.omu.Unlock()
		if n == 0 {
			break
		}
		if filled += n; filled > 64<<20 {
			t.Fatal("the socket never filled")
		}
	}
	r.omu.Lock()
	r.obuf = r.obuf[:0]
	r.dw.fn = func(uintptr) bool { // as if the socket took half the frame
		r.dw.n = len(r.dw.buf) / 2
		return true
	}
	r.omu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.deliver(&delivery{raw: frame, v: &v, inPlace: inPlaceMax})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.close() // lets the blocked write end
		<-done
		t.Fatal("the sender waited for the agent to take the rest of a half written frame")
	}
	r.omu.Lock()
	closing := r.closing
	r.omu.Unlock()
	select {
	case <-r.done:
	default:
		t.Fatal("connection not closed after a half written frame")
	}
	if !closing {
		t.Fatal("connection not marked closing after a half written frame")
	}
}
