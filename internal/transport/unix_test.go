//go:build unix

package transport

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/testutil"
	"golang.org/x/sys/unix"
)

func listen(t *testing.T, path string, cfg ListenConfig) net.Listener {
	t.Helper()
	ln, err := Listen(path, cfg)
	if err != nil {
		t.Fatalf("Listen(%s): %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	if got, want := SocketPath("/run/netcluster", "A"), "/run/netcluster/netcluster-A"; got != want {
		t.Errorf("SocketPath = %q, want %q", got, want)
	}
}

func TestListenDialRoundTrip(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "A")
	ln := listen(t, path, ListenConfig{})

	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(c, 5)) // echo "hello"
		done <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "hello" {
		t.Errorf("echo = %q, want hello", buf)
	}
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}
}

func TestListenMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode os.FileMode
		want os.FileMode
	}{
		{"zero means 0660", 0, 0o660},
		{"channel 0660", 0o660, 0o660},
		{"control 0600", 0o600, 0o600},
		{"wider than umask 0666", 0o666, 0o666},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := SocketPath(testutil.ShortDir(t), "m")
			listen(t, path, ListenConfig{Mode: tt.mode})
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket {
				t.Errorf("type = %v, want socket", fi.Mode().Type())
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %#o, want %#o", got, tt.want)
			}
		})
	}
}

func TestListenBadMode(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "m")
	_, err := Listen(path, ListenConfig{Mode: os.ModeSetuid | 0o660})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Listen with setuid mode: err = %v, want an error naming %s", err, path)
	}
}

func TestListenGroup(t *testing.T) {
	t.Parallel()
	gid := os.Getgid() // any process may give its files its own group
	path := SocketPath(testutil.ShortDir(t), "g")
	listen(t, path, ListenConfig{Group: strconv.Itoa(gid)})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := int(fi.Sys().(*syscall.Stat_t).Gid); got != gid {
		t.Errorf("gid = %d, want %d", got, gid)
	}

	_, err = Listen(SocketPath(testutil.ShortDir(t), "g"), ListenConfig{Group: "no-such-group-netcluster"})
	if err == nil || !strings.Contains(err.Error(), "no-such-group-netcluster") {
		t.Errorf("unknown group: err = %v, want an error naming the group", err)
	}
}

func TestListenCreatesParent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testutil.ShortDir(t), "sub")
	listen(t, SocketPath(dir, "A"), ListenConfig{})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() {
		t.Errorf("%s is not a directory", dir)
	}
}

func TestListenRemovesStaleSocket(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "A")
	// Leave a socket file nobody listens on, as a crash would.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	ln := listen(t, path, ListenConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial after replacing stale socket: %v", err)
	}
	c.Close()
	ln.Close()
}

func TestListenRefusesLiveServer(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "A")
	ln := listen(t, path, ListenConfig{})
	// Accept (and drop) the probe, as a real server would.
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()

	_, err := Listen(path, ListenConfig{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: err = %v, want ErrInUse", err)
	}
	want := "netcluster: a live server is already listening on " + path
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	<-accepted
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("live server's socket was touched: %v", err)
	}
}

func TestListenKeepsNonSocket(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	tests := []struct {
		name   string
		create func(path string) error
		kind   string
	}{
		{"regular file", func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o644) }, "regular file"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "directory"},
		{"symbolic link", func(p string) error { return os.Symlink("elsewhere", p) }, "symbolic link"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := SocketPath(dir, strconv.Itoa(i))
			if err := tt.create(path); err != nil {
				t.Fatal(err)
			}
			_, err := Listen(path, ListenConfig{})
			if !errors.Is(err, ErrNotSocket) {
				t.Fatalf("Listen: err = %v, want ErrNotSocket", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.kind) {
				t.Errorf("error %q does not name %s and %q", err, path, tt.kind)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("%s was removed: %v", path, err)
			}
		})
	}
}

func TestPathTooLong(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testutil.ShortDir(t), strings.Repeat("d", maxPathLen))
	path := SocketPath(dir, "A")
	_, err := Listen(path, ListenConfig{})
	if !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("Listen: err = %v, want ErrPathTooLong", err)
	}
	for _, want := range []string{path, strconv.Itoa(maxPathLen)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Listen created %s for a path it rejected", dir)
	}
	if _, err := Dial(context.Background(), path); !errors.Is(err, ErrPathTooLong) {
		t.Errorf("Dial: err = %v, want ErrPathTooLong", err)
	}
}

func TestPathAtLimit(t *testing.T) {
	t.Parallel()
	base := testutil.ShortDir(t)
	// Pad the directory so that the socket path is exactly maxPathLen bytes.
	pad := maxPathLen - len(SocketPath(base, "A")) - 1
	if pad < 1 {
		t.Skipf("temp dir %s too long", base)
	}
	path := SocketPath(filepath.Join(base, strings.Repeat("d", pad)), "A")
	if len(path) != maxPathLen {
		t.Fatalf("len(path) = %d, want %d", len(path), maxPathLen)
	}
	listen(t, path, ListenConfig{})
}

func TestDialNoServer(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		path := SocketPath(dir, "missing")
		_, err := Dial(context.Background(), path)
		if !errors.Is(err, ErrNoServer) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNoServer and fs.ErrNotExist", err)
		}
		want := "netcluster: no server on " + path + ": no such file or directory"
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
	})
	t.Run("stale", func(t *testing.T) {
		t.Parallel()
		path := SocketPath(dir, "stale")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close()
		_, err = Dial(context.Background(), path)
		if !errors.Is(err, ErrNoServer) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want ErrNoServer and ECONNREFUSED", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Dial(ctx, SocketPath(dir, "missing"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestPeerCred(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "A")
	ln := listen(t, path, ListenConfig{})
	type result struct {
		pid, uid int
		ok       bool
	}
	srv := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- result{}
			return
		}
		defer c.Close()
		pid, uid, ok := PeerCred(c)
		srv <- result{pid, uid, ok}
	}()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	want := result{os.Getpid(), os.Getuid(), true}
	if !peerCredSupported {
		want = result{}
	}
	if got := <-srv; got != want {
		t.Errorf("server side PeerCred = %+v, want %+v", got, want)
	}
	pid, uid, ok := PeerCred(c)
	if got := (result{pid, uid, ok}); got != want {
		t.Errorf("client side PeerCred = %+v, want %+v", got, want)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, ok := PeerCred(a); ok {
		t.Error("PeerCred(net.Pipe) ok = true, want false")
	}
}

func TestCloseRemovesSocket(t *testing.T) {
	t.Parallel()
	path := SocketPath(testutil.ShortDir(t), "A")
	ln, err := Listen(path, ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, Lstat(%s) err = %v, want not exist", path, err)
	}
	// And the path is free again.
	ln2 := listen(t, path, ListenConfig{})
	ln2.Close()
}

// TestListenRestoresUmask runs alone (it is not parallel), so nothing else
// changes the umask while it looks.
func TestListenRestoresUmask(t *testing.T) {
	const mask = 0o027
	old := unix.Umask(mask)
	defer unix.Umask(old)
	listen(t, SocketPath(testutil.ShortDir(t), "u"), ListenConfig{Mode: 0o660}).Close()
	if got := unix.Umask(mask); got != mask {
		t.Errorf("umask after Listen = %#o, want %#o", got, mask)
	}
}
