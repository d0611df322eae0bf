package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func parseBus(t testing.TB, src string) *config.Config { return testserver.ParseConfig(t, src) }

// startServer starts a server on bus (nil: the default) in dir, and
// closes it at the end of the test.
func startServer(t testing.TB, bus *config.Config, dir string) *server.Server {
	t.Helper()
	srv, _ := testserver.StartServer(t, bus, dir)
	return srv
}

func testCtx(t testing.TB) context.Context { return testutil.Context(t, 30*time.Second) }

// ncclient runs the command with args and input, returning its output.
func ncclient(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw syncBuffer
	err = run(testCtx(t), args, strings.NewReader(stdin), &out, &errw)
	return out.String(), errw.String(), err
}

type syncBuffer = testutil.SyncBuffer

// agent connects an agent for a test and closes it at the end.
func agent(t testing.TB, dir, channel string, opts ...netcluster.Option) *netcluster.Agent {
	t.Helper()
	opts = append([]netcluster.Option{netcluster.WithSocketDir(dir),
		netcluster.WithReconnectWait(5*time.Millisecond, 50*time.Millisecond)}, opts...)
	a, err := netcluster.Connect(testCtx(t), channel, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// collect gathers the messages an agent receives.
type collect struct {
	mu   sync.Mutex
	msgs []*netcluster.Message
	next int // the next message wait returns
	ch   chan struct{}
}

func listenAll(t testing.TB, a *netcluster.Agent, pattern string) *collect {
	t.Helper()
	c := &collect{ch: make(chan struct{}, 1000)}
	if _, err := a.On(pattern, func(m *netcluster.Message) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		c.ch <- struct{}{}
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

// wait waits for the next message, in the order they arrived, or fails.
func (c *collect) wait(t testing.TB) *netcluster.Message {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return c.msgs[c.next-1]
}

// none checks that no message arrives for a short while.
func (c *collect) none(t testing.TB) {
	t.Helper()
	select {
	case <-c.ch:
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("unexpected message %q", c.msgs[len(c.msgs)-1].Event)
	case <-time.After(100 * time.Millisecond):
	}
}

func writeFile(t testing.TB, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
