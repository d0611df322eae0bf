package netcluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/server"
)

// gapLog collects the errors an agent's handler gets.
type gapLog struct {
	mu   sync.Mutex
	gaps []*netcluster.GapError
}

func (l *gapLog) handle(err error) {
	var ge *netcluster.GapError
	if errors.As(err, &ge) {
		l.mu.Lock()
		l.gaps = append(l.gaps, ge)
		l.mu.Unlock()
	}
}

func (l *gapLog) get() []*netcluster.GapError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*netcluster.GapError(nil), l.gaps...)
}

// TestGapAfterRestart: a receiver connected again to a restarted server
// is told of the sender that did not come back (its connection died with
// the old server, and it closed while disconnected), with the last number
// it got of it; not of a sender that came back, nor of one that closed
// while the old server ran (its StreamEnd came), nor of one that emitted
// nothing to it.
func TestGapAfterRestart(t *testing.T) {
	bus := config.Default()
	bus.Channels["A"] = config.NewChannel()
	srv, dir := testserver.StartServer(t, bus, "")
	var log gapLog
	rcv := connect(t, dir, "A", netcluster.WithAgentID("rcv"), netcluster.WithErrorHandler(log.handle))
	rec := listen(t, rcv, "n")
	dead := connect(t, dir, "A", netcluster.WithAgentID("dead"))
	back := connect(t, dir, "A", netcluster.WithAgentID("back"))
	closed := connect(t, dir, "A", netcluster.WithAgentID("closed"))
	connect(t, dir, "A", netcluster.WithAgentID("silent"))
	ctx := ctxT(t)
	for i, a := range []*netcluster.Agent{dead, back, closed} {
		for range 3 + i {
			if err := a.Emit(ctx, "n", a.ID()); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitN(t, 3+4+5)
	if err := closed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The receiver has the StreamEnd of closed once a Ping after it is
	// answered: the server queued it before closed left.
	waitGone(t, srv, "closed")
	if err := rcv.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	srv.Close() // a crash: nobody is told anything
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	dead.Close(short) // it never comes back
	start := time.Now()
	testserver.StartServer(t, bus, dir)
	if err := back.Emit(ctx, "n", "back"); err != nil {
		t.Fatal(err)
	}
	rec.waitN(t, 3+4+5+1)
	for deadline := time.Now().Add(10 * time.Second); len(log.get()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	// Any other notice comes from the same Gone frame, handled in order
	// before the next message: one more message through, and the list is
	// complete.
	if err := back.Emit(ctx, "n", "back"); err != nil {
		t.Fatal(err)
	}
	rec.waitN(t, 3+4+5+2)
	gaps := log.get()
	if len(gaps) != 1 || gaps[0].Agent != "dead" || gaps[0].Channel != "A" || gaps[0].LastSeq != 3 {
		t.Fatalf("gap notices %+v, want one, for dead, after number 3", gaps)
	}
	if took < 2*time.Second {
		t.Errorf("the notice came %v after the restart, within the server's grace (2 s)", took)
	}
	t.Logf("notice %v after the restart: %v", took.Round(time.Millisecond), gaps[0])
}

// waitGone waits until the server no longer has agent id of channel A.
func waitGone(t *testing.T, srv *server.Server, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if _, ok := srv.Agent("A", id); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s still connected", id)
		}
	}
}

// TestGapSenderRestartedWithinGrace: the server and a sender die together
// and the sender's supervisor restarts it (same agent id, a new stream)
// within the restarted server's grace. Its first message reaches the
// receiver before the server answers the receiver's Watch; the receiver
// is told of the old stream then, before that message, once (the Gone
// that follows names the old stream, no longer watched).
func TestGapSenderRestartedWithinGrace(t *testing.T) {
	bus := config.Default()
	bus.Channels["A"] = config.NewChannel()
	srv, dir := testserver.StartServer(t, bus, "")
	var log gapLog
	var rec *recorder
	var before []int // messages handled before each notice
	states := make(chan netcluster.State, 16)
	rcv := connect(t, dir, "A", netcluster.WithAgentID("rcv"),
		netcluster.WithErrorHandler(func(err error) {
			log.handle(err) // on the handler goroutine, between messages
			before = append(before, len(rec.all()))
		}),
		netcluster.WithStateHandler(func(s netcluster.State, _ error) {
			select {
			case states <- s:
			default:
			}
		}))
	rec = listen(t, rcv, "n")
	ctx := ctxT(t)
	old := connect(t, dir, "A", netcluster.WithAgentID("s"))
	for range 3 {
		if err := old.Emit(ctx, "n", "old"); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitN(t, 3)

	srv.Close() // the server crashes
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	old.Close(short) // and the sender dies with it
	testserver.StartServer(t, bus, dir)
	restarted := time.Now()
	for down, timeout := false, time.After(10*time.Second); ; {
		select {
		case s := <-states:
			down = down || s == netcluster.Disconnected
			if !down || s != netcluster.Connected {
				continue
			}
		case <-timeout:
			t.Fatal("the receiver did not connect again")
		}
		break
	}
	if err := rcv.Flush(ctx); err != nil { // the server has its listener again
		t.Fatal(err)
	}
	again := connect(t, dir, "A", netcluster.WithAgentID("s")) // a new stream
	if err := again.Emit(ctx, "n", "new"); err != nil {
		t.Fatal(err)
	}
	rec.waitN(t, 4)
	gaps := log.get()
	if len(gaps) != 1 || gaps[0].Agent != "s" || gaps[0].LastSeq != 3 || before[0] != 3 {
		t.Fatalf("gap notices %+v (after %v messages) by the restarted sender's first message: want one, for the old stream of s, after 3", gaps, before)
	}
	// Past the grace the Watch is answered (s is gone with its old
	// stream): no second notice.
	time.Sleep(time.Until(restarted.Add(3 * time.Second)))
	if err := again.Emit(ctx, "n", "new"); err != nil {
		t.Fatal(err)
	}
	rec.waitN(t, 5)
	if g := log.get(); len(g) != 1 {
		t.Fatalf("gap notices %+v after the grace: want still one", g)
	}
}
