package server

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
)

// passedListener is a listening socket as systemd's socket activation
// hands one over: its Close leaves the socket file in place.
func passedListener(t *testing.T, path string) net.Listener {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	t.Cleanup(func() { ln.Close(); os.Remove(path) })
	return ln
}

// A channel with a passed listener serves agents on it, keeps it across a
// reload that moves the other channels, and leaves its socket file behind
// on shutdown; channels without one open their own sockets.
func TestConfigListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir, other := testutil.ShortDir(t), testutil.ShortDir(t)
	passedPath := filepath.Join(dir, "passed-A")
	bus := config.Default()
	bus.SocketDir = dir
	s, err := New(Config{Bus: bus, Console: io.Discard, Listeners: map[string]net.Listener{"A": passedListener(t, passedPath)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs()["A"]; got != passedPath {
		t.Fatalf("A listens on %q, want the passed %q", got, passedPath)
	}
	if got := s.Addrs()["B"]; got != filepath.Join(dir, "netcluster-B") {
		t.Fatalf("B listens on %q", got)
	}
	roundTrip := func() {
		t.Helper()
		recv, err := netcluster.Connect(ctx, "A", netcluster.WithSocketPath(passedPath))
		if err != nil {
			t.Fatal(err)
		}
		defer recv.Close(ctx)
		got := make(chan string, 1)
		recv.On("ping", func(m *netcluster.Message) { got <- string(m.Data) })
		if err := recv.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		send, err := netcluster.Connect(ctx, "A", netcluster.WithSocketPath(passedPath))
		if err != nil {
			t.Fatal(err)
		}
		defer send.Close(ctx)
		if err := send.Emit(ctx, "ping", 1); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-got:
			if d != "1" {
				t.Fatalf("got %q", d)
			}
		case <-ctx.Done():
			t.Fatal("no message through the passed listener")
		}
	}
	roundTrip()
	moved := bus.Clone()
	moved.SocketDir = other
	if err := s.Reload(moved); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs()["A"]; got != passedPath {
		t.Fatalf("after a reload A listens on %q, want the passed %q still", got, passedPath)
	}
	if got := s.Addrs()["B"]; got != filepath.Join(other, "netcluster-B") {
		t.Fatalf("after a reload B listens on %q", got)
	}
	roundTrip()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(passedPath); err != nil {
		t.Errorf("the passed socket file was removed on shutdown: %v", err)
	}
}

func TestConfigListenersErrors(t *testing.T) {
	ln := passedListener(t, filepath.Join(testutil.ShortDir(t), "x"))
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"unknown channel", Config{Listeners: map[string]net.Listener{"nope": ln}}},
		{"nil listener", Config{Listeners: map[string]net.Listener{"A": nil}}},
		{"with NoListen", Config{NoListen: true, Listeners: map[string]net.Listener{"A": ln}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), "Config.Listeners: channel") {
				t.Fatalf("New: %v", err)
			}
		})
	}
}
