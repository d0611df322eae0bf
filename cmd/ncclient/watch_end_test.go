package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
)

// holdingServer stands in for a server that accepts control connections
// and never answers (a stopped or overloaded one): a request to it ends
// only with its context.
func holdingServer(t *testing.T, dir string) {
	ln, err := transport.Listen(transport.SocketPath(dir, control.Channel), transport.ListenConfig{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// Ctrl-C (the context's end) while a stats request is in flight ends
// stats -watch and top cleanly: it is the user's stop, not a server that
// did not answer within -timeout (it was reported as "no reply from the
// server within 5s" and exit 1).
func TestWatchEndsCleanlyDuringRequest(t *testing.T) {
	for _, args := range [][]string{{"top"}, {"stats", "-watch", "1s"}} {
		dir := testutil.ShortDir(t)
		holdingServer(t, dir)
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		var out, errs syncBuffer
		err := run(ctx, append([]string{"-socketdir", dir}, args...), strings.NewReader(""), &out, &errs)
		cancel()
		if err != nil {
			t.Errorf("%v ended by its context during a request: %v", args, err)
		}
	}
	// Its own -timeout is still a failure, named as such.
	dir := testutil.ShortDir(t)
	holdingServer(t, dir)
	var out, errs syncBuffer
	err := run(testCtx(t), []string{"-socketdir", dir, "-timeout", "200ms", "stats", "-watch", "1s"}, strings.NewReader(""), &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "200ms") || errors.Is(err, context.Canceled) {
		t.Errorf("stats -watch past -timeout 200ms = %v, want the timeout named", err)
	}
}
