//go:build linux

package nettest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/transport"
)

// What the chaos tests (chaos_peers_test.go, chaos_attack_test.go) add
// to the servers of helpers_test.go: their network figures through the
// control socket, kill -9 and restart in the same socket directory, and
// their resident memory.

// netStats returns s's network figures (the control socket's stats).
func (s *server) netStats(t testing.TB) *control.NetStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, transport.SocketPath(s.dir, control.Channel), nil)
	if err != nil {
		t.Fatalf("%s: control: %v", s.h.Name, err)
	}
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("%s: stats: %v", s.h.Name, err)
	}
	if st.Network == nil {
		t.Fatalf("%s: stats without a network part", s.h.Name)
	}
	return st.Network
}

// peerOf returns what the figures st list of node, ok false if none.
func peerOf(st *control.NetStats, node string) (control.NetPeerStats, bool) {
	for _, p := range st.Peers {
		if p.Node == node {
			return p, true
		}
	}
	return control.NetPeerStats{}, false
}

// waitStats is waitFor for a condition on servers' stats: it polls every
// 50 ms, since stats (of many peers, through a control connection) are
// not free for the server nor for this process under -race.
func waitStats(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitFor(t, d, what, func() bool {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
		return false
	})
}

// kill stops s with SIGKILL: no last heartbeat, sockets left behind.
func (s *server) kill(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
}

// restart runs a new ncserver on s's host, socket directory and config,
// after s has exited (kill or stop).
func (s *server) restart(t testing.TB, bin string) *server {
	t.Helper()
	<-s.done
	n := &server{h: s.h, dir: s.dir, config: s.config, out: &syncBuf{}, done: make(chan struct{})}
	n.run(t, bin)
	return n
}

// rss returns the resident and peak resident memory of s's process, in
// bytes (VmRSS, VmHWM of /proc/PID/status; ip netns exec execs ncserver
// in place, so the pid is ncserver's).
func (s *server) rss(t testing.TB) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Name:\tncserver") {
		t.Fatalf("pid %d is not ncserver:\n%s", s.cmd.Process.Pid, b)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return rss, peak
}

// listener is an agent listening to every event of a channel, and what
// it received.
type listener struct {
	a  *netcluster.Agent
	in *inbox
}

// listener connects a listener to channel of s.
func (s *server) listener(t testing.TB, channel string) *listener {
	t.Helper()
	l := &listener{a: s.agent(t, channel), in: &inbox{}}
	if _, err := l.a.On(".*", l.in.handle); err != nil {
		t.Fatal(err)
	}
	l.flush(t)
	return l
}

// flush waits until the server acted on what l sent, its listener
// included, reconnecting first if need be.
func (l *listener) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// seqs returns the numbers carried by the messages of event ev from node.
func (l *listener) seqs(t testing.TB, node, ev string) []int {
	t.Helper()
	var out []int
	for _, m := range l.in.get() {
		if m.Node != node || m.Event != ev {
			continue
		}
		// A number, or [number, padding].
		var v any
		if err := m.Decode(&v); err != nil {
			t.Fatalf("message %.40s from %s: %v", m.Data, node, err)
		}
		if a, ok := v.([]any); ok && len(a) == 2 {
			v = a[0]
		}
		f, ok := v.(float64)
		if !ok {
			t.Fatalf("message %.40s from %s: not a number", m.Data, node)
		}
		out = append(out, int(f))
	}
	return out
}

// count returns how many messages of event ev from node l received.
func (l *listener) count(node, ev string) int {
	n := 0
	for _, m := range l.in.get() {
		if m.Node == node && m.Event == ev {
			n++
		}
	}
	return n
}

// span is the half-open range of message numbers [from, to).
type span struct{ from, to int }

// checkSpans checks that got is exactly the numbers of spans, in order,
// each once: nothing lost, duplicated or reordered.
func checkSpans(t testing.TB, who string, got []int, spans ...span) {
	t.Helper()
	var want []int
	for _, s := range spans {
		for i := s.from; i < s.to; i++ {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s got %d messages, want %d (%v)", who, len(got), len(want), spans)
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: message %d is number %d, want %d (%v): lost, duplicated or out of order", who, i, got[i], want[i], spans)
			return
		}
	}
}

// emit emits the numbers [from, to) as event ev from a.
func emit(t testing.TB, a *netcluster.Agent, ev string, from, to int) {
	t.Helper()
	if err := emitE(a, ev, from, to); err != nil {
		t.Fatal(err)
	}
}

// emitPadded emits [i, padding of pad bytes] for i in [from, to).
func emitPadded(t testing.TB, a *netcluster.Agent, ev string, from, to, pad int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := strings.Repeat("x", pad)
	for i := from; i < to; i++ {
		if err := a.Emit(ctx, ev, []any{i, p}); err != nil {
			t.Fatalf("emit %s %d: %v", ev, i, err)
		}
	}
}

// emitE is emit for another goroutine than the test's.
func emitE(a *netcluster.Agent, ev string, from, to int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		if err := a.Emit(ctx, ev, i); err != nil {
			return fmt.Errorf("emit %s %d: %w", ev, i, err)
		}
	}
	return nil
}
