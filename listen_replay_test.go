package netcluster_test

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// hungReplayServer serves one agent of channel D on a socket in dir as a
// server would, except that it never ends a replay: once asked for one it
// sends a replayed message, then n live messages of 1000 bytes for event
// "ev", and nothing more. The real server cannot be made to hang a replay
// on demand (a slow JetStream or a stuck server is what this stands for).
func hungReplayServer(t *testing.T, dir string, n int) {
	t.Helper()
	ln, err := net.Listen("unix", transport.SocketPath(dir, "D"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conn net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = nc
		mu.Unlock()
		_, rd, err := fakeWelcome(nc)
		if err != nil {
			return
		}
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			if f.Type == wire.TypeReplay {
				break
			}
		}
		wg.Add(1)
		go func() { // the agent's frames from now on: pings, and so on
			defer wg.Done()
			for {
				if _, err := rd.Next(); err != nil {
					return
				}
			}
		}()
		out := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagReplayed, Channel: "D", Agent: "old", Event: "ev", Data: []byte("old")})
		data := []byte(strings.Repeat("x", 1000))
		for range n {
			out = wire.AppendMsg(out, &wire.Msg{Channel: "D", Agent: "live", Event: "ev", Data: data})
		}
		nc.Write(out)
	}()
}

// A WithReplay listener whose replay does not end holds the live messages
// that arrive meanwhile only up to the agent's queue size: past it the
// replay is abandoned, the error handler is told, and the listener gets
// the live messages held, then the rest, in order.
func TestListenReplayHeldBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 1000
	hungReplayServer(t, dir, n)
	errs := make(chan error, 10)
	a := connect(t, dir, "D", netcluster.WithQueueSize(64<<10), netcluster.WithErrorHandler(func(err error) { errs <- err }))
	rec := newRecorder()
	if _, err := a.On("ev", rec.handle, netcluster.WithReplay()); err != nil {
		t.Fatal(err)
	}
	got := rec.waitN(t, n)
	for i, m := range got {
		if m.Replayed || m.Agent != "live" {
			t.Fatalf("message %d: replayed %v from %q, want only live ones", i, m.Replayed, m.Agent)
		}
	}
	select {
	case err := <-errs:
		if !errors.Is(err, netcluster.ErrReplayAbandoned) {
			t.Fatalf("error handler got %v, want ErrReplayAbandoned", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the error handler was not told of the abandoned replay")
	}
}
