package server

import (
	"context"
	"runtime/debug"
	"testing"
)

// memorylimit sets the process's Go memory limit to 7/8 of it while the
// server runs (the rest for what the runtime does not count), follows a
// reload, and gives the process its limit back when the server closes.
// Not parallel: the limit is the process's.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	srv, _ := ctlServer(t, `{"memorylimit": 1073741824, "channels": {"A": {}}}`)
	if got := debug.SetMemoryLimit(-1); got != 1<<30-1<<27 {
		t.Fatalf("limit %d while running, want %d", got, 1<<30-1<<27)
	}
	bus := srv.Bus()
	bus.MemoryLimit = 2 << 30
	if err := srv.Reload(bus); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 2<<30-2<<27 {
		t.Fatalf("limit %d after the reload, want %d", got, 2<<30-2<<27)
	}
	srv.Shutdown(context.Background())
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d after the server closed, want the process's %d", got, before)
	}
}
