package transport

import (
	"bufio"
	"context"
	"errors"
	"github.com/netcluster/netcluster/internal/testutil"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nobody is the uid the tests act as besides root.
const nobody = 65534

// sharedDir returns a fresh directory anyone may create entries in, like
// /tmp.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := testutil.ShortDir(t)
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// acceptAll accepts and closes connections until ln is closed.
func acceptAll(t *testing.T, ln net.Listener) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// Another user who binds a channel's name in a shared directory first is
// refused by the agents, by path and uid; a server of the agent's own user
// (or root) is accepted there.
func TestDialRefusesImpostor(t *testing.T) {
	dir := sharedDir(t)
	path := SocketPath(dir, "A")
	var ln net.Listener
	var err error
	testutil.AsUser(t, nobody, func() { ln, err = Listen(path, ListenConfig{Mode: 0o666}) })
	if err != nil {
		t.Fatalf("Listen as uid %d: %v", nobody, err)
	}
	acceptAll(t, ln)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err == nil {
		c.Close()
		t.Fatalf("Dial as root reached the server of uid %d in %s", nobody, dir)
	}
	if !errors.Is(err, ErrImpostor) {
		t.Errorf("err = %v, want ErrImpostor", err)
	}
	for _, want := range []string{path, "uid " + strconv.Itoa(nobody), "not by you (uid 0)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// The same server is trusted by its own user.
	testutil.AsUser(t, nobody, func() { c, err = Dial(ctx, path) })
	if err != nil {
		t.Fatalf("Dial as uid %d: %v", nobody, err)
	}
	c.Close()

	// And root's server in the shared directory is trusted by everyone.
	rootPath := SocketPath(dir, "B")
	acceptAll(t, listen(t, rootPath, ListenConfig{Mode: 0o666}))
	testutil.AsUser(t, nobody, func() { c, err = Dial(ctx, rootPath) })
	if err != nil {
		t.Fatalf("Dial as uid %d to root's server: %v", nobody, err)
	}
	c.Close()
}

// A socket whose mode leaves this user out is reported as a server that
// refuses the user, not as no server.
func TestDialPermissionDenied(t *testing.T) {
	dir := testutil.ShortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := SocketPath(dir, "A")
	acceptAll(t, listen(t, path, ListenConfig{Mode: 0o600}))
	var err error
	testutil.AsUser(t, nobody, func() {
		var c net.Conn
		if c, err = Dial(context.Background(), path); err == nil {
			c.Close()
		}
	})
	if !errors.Is(err, ErrRefused) || !errors.Is(err, fs.ErrPermission) || errors.Is(err, ErrNoServer) {
		t.Fatalf("err = %v, want ErrRefused and fs.ErrPermission, not ErrNoServer", err)
	}
	want := "netcluster: the server's socket refuses this user: " + path +
		" is there, but its mode or group does not let you (uid 65534) connect: permission denied"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

// setTempDir points os.TempDir, and so PrivateDir, at a fresh directory.
func setTempDir(t *testing.T) string {
	tmp := testutil.ShortDir(t)
	t.Setenv("TMPDIR", tmp)
	if got, want := PrivateDir(), filepath.Join(tmp, "netcluster-"+strconv.Itoa(os.Geteuid())); got != want {
		t.Fatalf("PrivateDir = %q, want %q", got, want)
	}
	return tmp
}

// Listen creates the private directory with mode 0700, whatever the umask.
func TestPrivateDirCreated(t *testing.T) {
	setTempDir(t)
	dir := PrivateDir()
	listen(t, SocketPath(dir, "A"), ListenConfig{}).Close()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 || ownerOf(fi) != os.Geteuid() {
		t.Errorf("%s: %v owned by %d, want a directory 0700 owned by %d", dir, fi.Mode(), ownerOf(fi), os.Geteuid())
	}
}

// A private directory someone else could have prepared is refused by the
// server and by the agents, with the reason.
func TestPrivateDirRefused(t *testing.T) {
	tmp := setTempDir(t)
	dir := PrivateDir()
	path := SocketPath(dir, "A")
	refused := func(t *testing.T, want string) {
		t.Helper()
		if ln, err := Listen(path, ListenConfig{}); err == nil {
			ln.Close()
			t.Errorf("Listen in %s succeeded", dir)
		} else if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), want) {
			t.Errorf("Listen: %v, want ErrUnsafeDir saying %q", err, want)
		}
		if c, err := Dial(context.Background(), path); err == nil {
			c.Close()
			t.Errorf("Dial in %s succeeded", dir)
		} else if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), want) {
			t.Errorf("Dial: %v, want ErrUnsafeDir saying %q", err, want)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Run("wider mode", func(t *testing.T) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		refused(t, "has mode 0755")
	})
	t.Run("other owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("ROOT-SKIP: making a directory of another owner needs root")
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, -1); err != nil {
			t.Fatal(err)
		}
		refused(t, "belongs to uid 65534, not to you (uid 0)")
	})
	t.Run("symbolic link", func(t *testing.T) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(tmp, "elsewhere")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, dir); err != nil {
			t.Fatal(err)
		}
		refused(t, "is a symbolic link")
	})
}

// umaskNow reads the process umask without changing it.
func umaskNow(t *testing.T) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no Umask line in /proc/self/status")
	return ""
}

// Listen never changes the process umask, which would change the mode of
// files that other goroutines of an embedding program create meanwhile.
func TestListenLeavesUmask(t *testing.T) {
	before := umaskNow(t)
	dir := testutil.ShortDir(t)
	stop := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if m := umaskNow(t); m != before {
				seen <- m
				return
			}
		}
	}()
	for i := range 300 {
		ln, err := Listen(SocketPath(dir, strconv.Itoa(i)), ListenConfig{Mode: 0o660})
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	close(stop)
	if m, changed := <-seen; changed {
		t.Errorf("umask was %s during Listen, want %s throughout", m, before)
	}
}
