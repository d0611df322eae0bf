package netcluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func busConfig(t testing.TB, src string) *config.Config { return testserver.ParseConfig(t, src) }

// startServer starts a server on bus (nil: the default) in a new socket
// directory, and closes it at the end of the test.
func startServer(t testing.TB, bus *config.Config) (*server.Server, string) {
	t.Helper()
	return testserver.StartServer(t, bus, "")
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect connects an agent for a test and closes it at the end.
func connect(t testing.TB, dir, channel string, opts ...netcluster.Option) *netcluster.Agent {
	t.Helper()
	opts = append([]netcluster.Option{netcluster.WithSocketDir(dir), netcluster.WithReconnectWait(5*time.Millisecond, 50*time.Millisecond)}, opts...)
	a, err := netcluster.Connect(ctxT(t), channel, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// recorder collects the messages a listener receives.
type recorder struct {
	mu   sync.Mutex
	msgs []*netcluster.Message
	more chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) handle(m *netcluster.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []*netcluster.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*netcluster.Message(nil), r.msgs...)
}

// waitN waits until the recorder holds at least n messages.
func (r *recorder) waitN(t testing.TB, n int) []*netcluster.Message {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if got := r.all(); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", len(r.all()), n)
		}
	}
}

// listen adds a recording listener to a and flushes so the server has it.
func listen(t testing.TB, a *netcluster.Agent, pattern string) *recorder {
	t.Helper()
	r := newRecorder()
	if _, err := a.On(pattern, r.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return r
}
