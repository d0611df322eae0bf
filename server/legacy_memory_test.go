package server

import (
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// A silent connection whose outbox was full when it turned legacy holds
// about its outbox bound, not up to twice it, once its writer has written
// a socket buffer's worth of the backlog and a sender has filled the room
// that made: the backlog's array counts against the bound while it holds
// what is converted (convert moves the rest to an array of its size), and
// the envelopes queued after it grow to the room left. 100 such
// connections held 1.5–2 times their bound and took the process past its
// memorylimit: its collector ran without end (issue 10, item 5).
func TestLegacyDecisionHoldsTheBound(t *testing.T) {
	const bound = 1 << 20
	s := lifecycleServer(t, func(c *config.Config) { c.OutBuffer = bound })
	ch := s.channels["A"]
	frame := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "src", Event: "ev", Data: []byte(`"` + strings.Repeat("p", 1000) + `"`)})
	v, _ := wire.ParseMsg(frame[wire.HeaderLen:])
	sock := newBufSink(unprovenBufs * defaultSockBuf) // then nothing read
	r := newConn(ch, sock)
	t.Cleanup(r.close)
	r.omu.Lock()
	r.undecided = true
	r.omu.Unlock()
	for i := 0; r.dropped.Load() == 0; i++ {
		if i > 2000 {
			t.Fatal("the undecided outbox never full")
		}
		r.deliver(&delivery{raw: frame, v: &v})
	}
	r.toLegacy()
	r.omu.Lock()
	backlog := r.conv // its array, as long as conv shares it
	r.omu.Unlock()
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		r.writeLoop()
	}()
	for deadline := time.Now().Add(10 * time.Second); !sock.blocked.Load(); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer wrote %d bytes, never blocked", sock.n.Load())
		}
		r.deliver(&delivery{raw: frame, v: &v})
	}
	for dropped := r.dropped.Load(); r.dropped.Load() == dropped; {
		r.deliver(&delivery{raw: frame, v: &v})
	}
	r.omu.Lock()
	convArray := cap(r.conv)
	if sameArray(r.conv, backlog) {
		convArray = cap(backlog)
	}
	held := convArray + cap(r.obuf) + r.batchLen
	obuf, batch := cap(r.obuf), r.batchLen
	r.omu.Unlock()
	t.Logf("wrote %d bytes; holds %d: the backlog's array %d, envelopes queued %d, the batch in flight %d", sock.n.Load(), held, convArray, obuf, batch)
	if held > bound+bound/16 {
		t.Fatalf("a silent connection turned legacy holds %d bytes (the backlog's array %d, envelopes queued %d, the batch in flight %d); bound %d", held, convArray, obuf, batch, bound)
	}
}

// sameArray reports whether a and b end at the same element of one array.
func sameArray(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}
