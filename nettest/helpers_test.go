//go:build linux

package nettest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/netns"
	"github.com/netcluster/netcluster/internal/testutil"
)

// Two 32-byte keys, and one the others lack.
const (
	key1   = `{"id": 1, "secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`
	key2   = `{"id": 2, "secret": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}`
	keyBad = `{"id": 1, "secret": "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="}`
)

// serverBin is ncserver built once for the package's tests (a build
// takes seconds on a loaded machine), in a directory TestMain removes.
var serverBin struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildServer builds ncserver, once per test binary, and returns its path.
func buildServer(t testing.TB) string {
	t.Helper()
	serverBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "nettest-ncserver-")
		if err != nil {
			serverBin.err = err
			return
		}
		serverBin.dir = dir
		bin := filepath.Join(dir, "ncserver")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(gobin, "build", "-o", bin, "github.com/netcluster/netcluster/cmd/ncserver").CombinedOutput()
		if err != nil {
			serverBin.err = fmt.Errorf("go build ncserver: %v\n%s", err, out)
			return
		}
		serverBin.path = bin
	})
	if serverBin.err != nil {
		t.Fatal(serverBin.err)
	}
	return serverBin.path
}

// syncBuf is a bytes.Buffer safe for a process's output and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is an ncserver process in a namespace.
type server struct {
	h      *netns.Host
	dir    string // socket directory
	config string // config file
	cmd    *exec.Cmd
	out    *syncBuf // stdout and stderr
	node   string   // its node id
	done   chan struct{}
}

// startServer writes cfg (a JWCC object without socketdir, which is
// added) and runs ncserver on it inside h. It returns once the server
// has reported its network.
func startServer(t testing.TB, bin string, h *netns.Host, cfg string) *server {
	t.Helper()
	s := &server{h: h, dir: testutil.ShortDir(t), out: &syncBuf{}, done: make(chan struct{})}
	s.config = filepath.Join(s.dir, "ncserver.jsonc")
	s.write(t, cfg)
	s.run(t, bin)
	return s
}

// run starts s's process on its config and waits for it to be ready.
func (s *server) run(t testing.TB, bin string) {
	t.Helper()
	s.cmd = s.h.Command(context.Background(), bin, "-config", s.config, "-log-level", "debug")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	m := s.waitLog(t, regexp.MustCompile(`msg="ncserver ready" .*node=([0-9a-f]{16})`))
	s.node = m[1]
}

func (s *server) write(t testing.TB, cfg string) {
	t.Helper()
	cfg = strings.Replace(cfg, "{", fmt.Sprintf("{\n  \"socketdir\": %q,", s.dir), 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload rewrites the config and sends SIGHUP, and waits for the server
// to report the reload.
func (s *server) reload(t testing.TB, cfg string) {
	t.Helper()
	before := strings.Count(s.out.String(), `msg="config reloaded"`)
	s.write(t, cfg)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.out.String(), `msg="config reloaded"`) == before {
		if strings.Contains(s.out.String(), "reload failed") || time.Now().After(deadline) {
			t.Fatalf("%s: reload not reported:\n%s", s.h.Name, s.out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop stops the server with SIGTERM (SIGKILL after 5 s).
func (s *server) stop(t testing.TB) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Errorf("%s: ncserver ignored SIGTERM; killing it", s.h.Name)
		s.cmd.Process.Kill()
		<-s.done
	}
	if t.Failed() {
		t.Logf("ncserver in %s said:\n%s", s.h.Name, tail(s.out.String(), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// waitLog waits for re to match the server's output and returns the
// submatches.
func (s *server) waitLog(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.out.String()); m != nil {
			return m
		}
		select {
		case <-s.done:
			t.Fatalf("%s: ncserver exited waiting for %q:\n%s", s.h.Name, re, s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %q in:\n%s", s.h.Name, re, tail(s.out.String(), 4000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agent connects an agent of this process to a channel of s.
func (s *server) agent(t testing.TB, channel string) *netcluster.Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := netcluster.Connect(ctx, channel, netcluster.WithSocketDir(s.dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	return a
}

// inbox records the messages an agent receives.
type inbox struct {
	mu   sync.Mutex
	msgs []*netcluster.Message
}

func (in *inbox) handle(m *netcluster.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

func (in *inbox) get() []*netcluster.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*netcluster.Message(nil), in.msgs...)
}

// listen connects an agent listening to pattern on channel of s.
func (s *server) listen(t testing.TB, channel, pattern string) *inbox {
	t.Helper()
	a := s.agent(t, channel)
	in := &inbox{}
	if _, err := a.On(pattern, in.handle); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return in
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSeq checks that msgs carry the integers 0..n-1 in order.
func checkSeq(t testing.TB, who string, msgs []*netcluster.Message, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Errorf("%s got %d messages, want %d", who, len(msgs), n)
	}
	for i, m := range msgs {
		var v int
		if err := m.Decode(&v); err != nil || v != i {
			t.Errorf("%s: message %d is %s (%v): lost or out of order", who, i, m.Data, err)
			return
		}
	}
}

// netConfig returns the network part of an ncserver config for host h.
func netConfig(h *netns.Host, keys string) string {
	return fmt.Sprintf(`"connecttonet": true, "interface": "eth0", "nodename": %q, "keys": [%s],`, h.Name[len(h.Name)-2:], keys)
}
