// Package testutil holds the helpers that tests of several packages share:
// short socket directories, a context bounded by the test, a buffer safe
// for a server's goroutines, a bounded wait for a condition, and (Linux)
// acting as another user. It imports nothing of netcluster, so the
// tests of any package may use it, server and transport included; a
// server started for one test is in package testserver.
package testutil

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"
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

// Eventually waits until cond holds, checking every 5 ms, and fails the
// test naming what it waited for if 10 s pass first.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
