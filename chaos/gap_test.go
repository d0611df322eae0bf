//go:build unix

package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
)

// perSender counts, on the receiver, each sender's numbered messages.
type perSender struct {
	mu   sync.Mutex
	by   map[string]*counter
	gaps []*netcluster.GapError
	at   []uint64 // the sender's count when each gap notice came
}

func (p *perSender) of(agent string) *counter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.by == nil {
		p.by = make(map[string]*counter)
	}
	c := p.by[agent]
	if c == nil {
		c = new(counter)
		p.by[agent] = c
	}
	return c
}

func (p *perSender) handle(m *netcluster.Message) { p.of(m.Agent).handle(m) }

func (p *perSender) onError(err error) {
	var ge *netcluster.GapError
	if errors.As(err, &ge) {
		last, _, _, _ := p.of(ge.Agent).get()
		p.mu.Lock()
		p.gaps = append(p.gaps, ge)
		p.at = append(p.at, last)
		p.mu.Unlock()
	}
}

func (p *perSender) notices() ([]*netcluster.GapError, []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*netcluster.GapError(nil), p.gaps...), append([]uint64(nil), p.at...)
}

// waitFor waits until the receiver has more than n messages of agent.
func (p *perSender) waitFor(t *testing.T, agent string, n uint64, end time.Time) {
	t.Helper()
	for deadline := earliest(time.Now().Add(30*time.Second), end); ; time.Sleep(10 * time.Millisecond) {
		if last, _, _, _ := p.of(agent).get(); last > n {
			return
		}
		if time.Now().After(deadline) {
			last, _, _, _ := p.of(agent).get()
			t.Fatalf("the receiver got %d of %s's messages, waiting for more than %d", last, agent, n)
		}
	}
}

// TestKillSenderAndServer kills, with SIGKILL and at once, a sender
// process emitting as fast as it can and ncserver, then restarts the
// server. The receiver must be told of that sender (a *GapError naming it
// and the last number it got), and of no other: not of a sender that
// survives (it resumes, none of its messages lost or twice), not of a
// sender process that closed cleanly, nor of one killed alone while the
// server ran (the server told the receiver its stream ended).
func TestKillSenderAndServer(t *testing.T) {
	bin := buildServer(t)
	dir := testutil.ShortDir(t)
	config := writeConfig(t, dir)
	srv := startServer(t, bin, config)
	defer func() { srv.kill() }()
	ctx := testutil.Context(t, 2*time.Minute)
	end, _ := ctx.Deadline()

	var rs perSender
	retry := netcluster.WithReconnectWait(10*time.Millisecond, 250*time.Millisecond)
	rcv, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("receiver"), retry,
		netcluster.WithErrorHandler(rs.onError))
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close(context.Background())
	if _, err := rcv.On("n", rs.handle); err != nil {
		t.Fatal(err)
	}
	if err := rcv.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ctl, err := control.Dial(ctx, transport.SocketPath(dir, "control"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	gone := func(id string) {
		t.Helper()
		for deadline := earliest(time.Now().Add(30*time.Second), end); ; time.Sleep(5 * time.Millisecond) {
			if _, err := ctl.Agent(ctx, "A", id); err != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still connected", id)
			}
		}
	}

	// A sender process that closes cleanly, and one killed alone: the
	// server, running, tells the receiver their streams ended.
	const cleanN = 5000
	clean := startSender(t, dir, "clean", cleanN)
	select {
	case <-clean.closed:
	case <-time.After(time.Until(end)):
		t.Fatal("the clean sender did not close")
	}
	rs.waitFor(t, "clean", cleanN-1, end)
	alone := startSender(t, dir, "alone", 0)
	rs.waitFor(t, "alone", 5000, end)
	alone.cmd.Process.Signal(syscall.SIGKILL)
	<-alone.done
	gone("alone")
	gone("clean")

	// The sender killed with the server, and one of this process that
	// survives, both under load. Every StreamEnd queued before they
	// started reaches the receiver before their messages.
	doomed := startSender(t, dir, "doomed", 0)
	snd, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("survivor"), retry,
		netcluster.WithBufferSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Uint64
	stop, sent := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sent)
		data := make([]byte, 128)
		for n := uint64(1); ; n++ {
			binary.BigEndian.PutUint64(data, n)
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := snd.EmitRaw(ctx, "n", data)
				if err == nil {
					break
				}
				if !errors.Is(err, netcluster.ErrBufferFull) {
					t.Errorf("emit %d: %v", n, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
			accepted.Store(n)
		}
	}()
	rs.waitFor(t, "doomed", 20000, end)
	rs.waitFor(t, "survivor", 20000, end)
	ends := uint64(0)
	if ci, err := ctl.Channel(ctx, "A"); err == nil {
		ends = ci.StreamEnds
	}
	ctl.Close()
	// Stopped first, so that its socket cannot close while the server
	// runs; killed once the server is.
	doomed.cmd.Process.Signal(syscall.SIGSTOP)
	srv.kill()
	doomed.cmd.Process.Signal(syscall.SIGKILL)
	<-doomed.done
	got, _, _, _ := rs.of("doomed").get()
	t.Logf("killed: doomed had %d accepted (last report), the receiver %d of them; survivor %d accepted; %d StreamEnds before",
		doomed.accepted.Load(), got, accepted.Load(), ends)
	srv = startServer(t, bin, config)
	restarted := time.Now()

	// The survivor goes on after the restart, then stops: every message
	// it had accepted arrives once.
	last, _, _, _ := rs.of("survivor").get()
	rs.waitFor(t, "survivor", last+10000, end)
	close(stop)
	<-sent
	total := accepted.Load()
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := snd.Flush(closeCtx); err != nil {
		t.Fatalf("survivor flush: %v", err)
	}
	if err := snd.Close(closeCtx); err != nil {
		t.Fatalf("survivor close: %v", err)
	}
	rs.waitFor(t, "survivor", total-1, end)

	for deadline := earliest(time.Now().Add(20*time.Second), end); ; time.Sleep(10 * time.Millisecond) {
		if gaps, _ := rs.notices(); len(gaps) > 0 || time.Now().After(deadline) {
			break
		}
	}
	// A notice for another sender would come in the same Gone frame,
	// before any later message: one more message through and the list is
	// complete.
	probe, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("probe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.EmitRaw(ctx, "n", make([]byte, 8)); err != nil { // number 0: counted as a duplicate of probe's
		t.Fatal(err)
	}
	if err := probe.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := earliest(time.Now().Add(20*time.Second), end); ; time.Sleep(10 * time.Millisecond) {
		if _, dups, _, _ := rs.of("probe").get(); dups > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe's message did not arrive")
		}
	}

	gaps, at := rs.notices()
	for i, g := range gaps {
		t.Logf("notice %d, %v after the restart: %v (the receiver had %d)", i+1, time.Since(restarted).Round(time.Millisecond), g, at[i])
	}
	if len(gaps) != 1 || gaps[0].Agent != "doomed" || gaps[0].Channel != "A" {
		t.Fatalf("%d gap notices, want one, for doomed", len(gaps))
	}
	dl, ddups, dgaps, dbad := rs.of("doomed").get()
	if gaps[0].LastSeq != dl || at[0] != dl || ddups != 0 || dgaps != 0 {
		t.Fatalf("notice after number %d; the receiver got up to %d (%d when told), %d duplicates, %d gaps (%s)",
			gaps[0].LastSeq, dl, at[0], ddups, dgaps, dbad)
	}
	sl, sdups, sgaps, sbad := rs.of("survivor").get()
	t.Logf("survivor: %d accepted, received up to %d, %d duplicates, %d gaps; doomed: received up to %d, at least %d accepted",
		total, sl, sdups, sgaps, dl, doomed.accepted.Load())
	if sl != total || sdups != 0 || sgaps != 0 {
		t.Fatalf("survivor: received up to %d of %d, %d duplicates, %d gaps (first: %s)", sl, total, sdups, sgaps, sbad)
	}
	for _, id := range []string{"clean", "alone"} {
		if l, d, g, bad := rs.of(id).get(); d != 0 || g != 0 || (id == "clean" && l != cleanN) {
			t.Errorf("%s: received up to %d, %d duplicates, %d gaps (%s)", id, l, d, g, bad)
		}
	}
}
