//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
)

// The tests in this file run the real ncserver binary, as systemd or a
// user would.

var (
	binOnce  sync.Once
	binPath  string
	binError error
)

// ncserverBinary builds ncserver once per test run, stamped with VCS
// information when the tree is a git clone.
func ncserverBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binError = os.MkdirTemp("", "ncserver-bin"); binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "ncserver")
		cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, ".")
		var out []byte
		if out, binError = cmd.CombinedOutput(); binError != nil {
			binError = errors.New(binError.Error() + ": " + string(out))
		}
	})
	if binError != nil {
		t.Fatalf("building ncserver: %v", binError)
	}
	return binPath
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(ncserverBinary(t), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	line := string(out)
	for _, want := range []string{"ncserver ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(line, want) {
			t.Errorf("-version: %q lacks %q", line, want)
		}
	}
	// In a git clone (not a worktree, whose .git is a file go build does
	// not follow) the build is stamped with the commit.
	if fi, err := os.Stat("../../.git"); err == nil && fi.IsDir() {
		if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			if want := "commit " + string(head[:12]); !strings.Contains(line, want) {
				t.Errorf("-version: %q lacks %q", line, want)
			}
		}
	}
}

// An error reads "ncserver: channel A: listen on …", not "ncserver:
// netcluster: channel A: netcluster: listen on …".
func TestErrorPrefixOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	cmd := exec.Command(ncserverBinary(t), "-socketdir", filepath.Join(file, "sub"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; stderr %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "ncserver: channel ") || strings.Contains(last, "netcluster:") || !strings.Contains(last, "not a directory") {
		t.Errorf("error line %q, want one prefix: \"ncserver: channel X: listen on …: not a directory\"", last)
	}
}

// notifySocket is a fake systemd notification socket.
type notifySocket struct {
	t    *testing.T
	path string
	c    *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	path := filepath.Join(testutil.ShortDir(t), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{t: t, path: path, c: c}
}

// next returns the next notification that is not a watchdog ping, and how
// many pings came before it.
func (n *notifySocket) next() (msg string, pings int) {
	n.t.Helper()
	buf := make([]byte, 4096)
	for {
		n.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := n.c.Read(buf)
		if err != nil {
			n.t.Fatalf("no notification: %v", err)
		}
		if msg = string(buf[:k]); msg != "WATCHDOG=1" {
			return msg, pings
		}
		pings++
	}
}

// ncserver under a fake systemd: READY=1 once every channel listens,
// watchdog pings at half WATCHDOG_USEC, RELOADING=1 and READY=1 around a
// SIGHUP reload, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := testutil.ShortDir(t)
	conf := filepath.Join(dir, "nc.json")
	os.WriteFile(conf, []byte(`{"socketdir": "`+dir+`", "channels": {"A": {}}}`), 0o644)
	n := newNotifySocket(t)
	cmd := exec.Command(ncserverBinary(t), conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=100000")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	msg, _ := n.next()
	if !strings.HasPrefix(msg, "READY=1\nSTATUS=2 channels, node ") {
		t.Fatalf("first notification %q, want READY=1 with a status", msg)
	}
	for _, ch := range []string{"A", "control"} {
		if _, err := os.Stat(filepath.Join(dir, "netcluster-"+ch)); err != nil {
			t.Errorf("READY=1 before channel %s listens: %v", ch, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // about 6 pings at 50 ms
	os.WriteFile(conf, []byte(`{"socketdir": "`+dir+`", "channels": {"A": {}, "B": {}}}`), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	msg, pings := n.next()
	if pings < 2 {
		t.Errorf("%d watchdog pings in 300 ms with WATCHDOG_USEC=100000, want several", pings)
	}
	if !strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("after SIGHUP %q, want RELOADING=1", msg)
	}
	if msg, _ := n.next(); !strings.HasPrefix(msg, "READY=1") {
		t.Fatalf("after the reload %q, want READY=1", msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "netcluster-B")); err != nil {
		t.Errorf("READY=1 after a reload that did not open B: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if msg, _ := n.next(); msg != "STOPPING=1" {
		t.Fatalf("after SIGTERM %q, want STOPPING=1", msg)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
}

// passSocket is a listening socket at path as a .socket unit makes one,
// and its descriptor to pass to ncserver.
func passSocket(t *testing.T, path string) *os.File {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	t.Cleanup(func() { f.Close() })
	return f
}

// activated starts ncserver as systemd would for a socket unit: the
// sockets as descriptors 3, 4, … and LISTEN_PID set to the new process's
// pid (sh sets it, then execs ncserver in the same process).
func activated(t *testing.T, names string, files []*os.File, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, ncserverBinary(t)}, args...)...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS="+itoa(len(files)), "LISTEN_FDNAMES="+names)
	cmd.ExtraFiles = files
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stderr
}

func itoa(n int) string { return string(rune('0' + n)) } // n < 10 here

func waitFor(t *testing.T, what string, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in\n%s", what, want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ncserver exit: %v", err)
	}
}

// Socket activation: ncserver serves channels on the sockets it is
// passed, found by name (FileDescriptorName=A) or by path (a socket unit
// listening on <socketdir>/netcluster-B); an agent connects before the
// server runs, and stays reachable across a restart, and the passed
// sockets outlive the server, which removes only its own.
func TestSocketActivation(t *testing.T) {
	dir := testutil.ShortDir(t)
	pathA, pathB := filepath.Join(dir, "sock-A"), filepath.Join(dir, "netcluster-B")
	files := []*os.File{passSocket(t, pathA), passSocket(t, pathB)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The receiver connects to B while no server runs: the socket is there.
	type result struct {
		a   *netcluster.Agent
		err error
	}
	connected := make(chan result, 1)
	go func() {
		a, err := netcluster.Connect(ctx, "B", netcluster.WithSocketPath(pathB), netcluster.WithReconnectWait(10*time.Millisecond, 50*time.Millisecond))
		connected <- result{a, err}
	}()
	time.Sleep(100 * time.Millisecond)
	cmd, stderr := activated(t, "A:ncserver.socket", files, "-socketdir", dir)
	r := <-connected
	if r.err != nil {
		t.Fatalf("connect before the server started: %v\n%s", r.err, stderr.String())
	}
	recv := r.a
	defer recv.Close(ctx)
	got := make(chan string, 100)
	recv.On("ping", func(m *netcluster.Message) { got <- string(m.Data) })
	recv.Flush(ctx)
	waitFor(t, "first start", stderr, "passed_sockets=2")
	for _, want := range []string{`channel=A path=` + pathA + ` passed=true`, `channel=B path=` + pathB + ` passed=true`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
	send, err := netcluster.Connect(ctx, "B", netcluster.WithSocketPath(pathB), netcluster.WithReconnectWait(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close(ctx)
	expect := func(data string) {
		t.Helper()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := send.Emit(ctx, "ping", data); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-got:
				if d == `"`+data+`"` {
					return
				}
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("no %q through the passed socket\n%s", data, stderr.String())
			}
		}
	}
	expect("before")

	stop(t, cmd)
	for _, p := range []string{pathA, pathB} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("passed socket %s removed by the server: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "netcluster-control")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server's own control socket left behind: %v", err)
	}
	cmd, stderr = activated(t, "A:ncserver.socket", files, "-socketdir", dir)
	waitFor(t, "restart", stderr, "passed_sockets=2")
	expect("after")
	stop(t, cmd)
}

// A passed socket that is for no channel stops the server with a message
// saying how to name it.
func TestSocketActivationUnknown(t *testing.T) {
	dir := testutil.ShortDir(t)
	files := []*os.File{passSocket(t, filepath.Join(dir, "other"))}
	cmd, stderr := activated(t, "web", files, "-socketdir", dir)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	if want := `ncserver: socket activation: socket "web" on ` + filepath.Join(dir, "other") + ` is for no channel of the config: name the channel with FileDescriptorName=`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
