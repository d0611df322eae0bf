//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A symbolic link swapped from a regular file to a FIFO after any look at
// it, just before the open, must not block the load: an open that waits
// for a writer would pin the reload request (and its control connection)
// for ever.
func TestLoadFIFOSwappedIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "nc.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	swap := func() {
		tmp := link + ".new"
		if err := os.Symlink(fifo, tmp); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Error(err)
		}
	}
	for _, uid := range []*int{nil, new(int)} { // Load, and LoadAs(root)
		done := make(chan error, 1)
		go func() {
			_, err := load(link, uid, swap)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("load of a link swapped to a FIFO: %v, want not a regular file", err)
			}
		case <-time.After(10 * time.Second):
			// A writer releases the blocked open, so the goroutine ends.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			<-done
			t.Fatal("load blocked opening a FIFO swapped in before the open")
		}
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(good, link); err != nil {
			t.Fatal(err)
		}
	}
}
