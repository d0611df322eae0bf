// Package testutil holds the helpers that tests of several packages share:
// short socket directories, a server started for one test, a buffer safe
// for a server's goroutines.
package testutil

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

// ShortDir returns a new temporary directory with a short path, removed at
// the end of the test: socket paths are limited to about 104 bytes, and
// t.TempDir's can be longer.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ParseConfig parses a JWCC config, failing the test on error.
func ParseConfig(t testing.TB, src string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(src), t.Name()+".jsonc")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StartServer starts a server on bus (nil: the default) listening in dir
// ("" : a new ShortDir), and closes it at the end of the test. It returns
// the server and its socket directory.
func StartServer(t testing.TB, bus *config.Config, dir string) (*server.Server, string) {
	t.Helper()
	if bus == nil {
		bus = config.Default()
	}
	if dir == "" {
		dir = ShortDir(t)
	}
	bus.SocketDir = dir
	srv, err := server.New(server.Config{Bus: bus, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, dir
}

// Context returns a context that ends after d or at the end of the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
