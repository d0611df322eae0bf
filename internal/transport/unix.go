//go:build unix

package transport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// probeTimeout bounds the dial Listen makes to tell a live server from a
// stale socket file.
const probeTimeout = time.Second

// SocketPath returns where channel listens: dir/netcluster-<channel>.
func SocketPath(dir, channel string) string {
	return filepath.Join(dir, "netcluster-"+channel)
}

// Listen listens on the Unix socket at path with the permissions in cfg.
//
// A missing parent directory is created with mode 0755 (socket directories
// such as /run/netcluster live on tmpfs and vanish at reboot); access is
// controlled by the socket's own mode. The per-user directory [PrivateDir]
// is the exception: it is created with mode 0700, and refused if it exists
// with another owner or a wider mode. If path is a socket a live server
// answers on, Listen returns an error wrapping ErrInUse; if it is a stale
// socket it is removed; if it is anything else Listen returns an error
// wrapping ErrNotSocket and leaves it alone.
//
// The socket's group and mode are set between bind and listen, while
// connecting to it is still refused, so nobody can connect under the mode
// the process umask gave the file; the umask is never changed. Closing the
// listener removes the socket file.
func Listen(path string, cfg ListenConfig) (net.Listener, error) {
	mode := cfg.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	if mode&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("netcluster: listen on %s: mode %v has bits outside 0777", path, mode)
	}
	if err := checkPathLen(path); err != nil {
		return nil, err
	}
	gid := -1
	if cfg.Group != "" {
		var err error
		if gid, err = lookupGroup(cfg.Group); err != nil {
			return nil, fmt.Errorf("netcluster: listen on %s: %w", path, err)
		}
	}
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("netcluster: listen on %s: %w", path, err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := listenMode(path, mode, gid)
	if errors.Is(err, syscall.EADDRINUSE) {
		// Another process bound the path between clearStale and here.
		return nil, inUse(path)
	}
	if err != nil {
		return nil, fmt.Errorf("netcluster: listen on %s: %w", path, err)
	}
	return ln, nil
}

// prepareDir creates the socket directory dir if missing: with mode 0700
// and checked as private if it is [PrivateDir], else with mode 0755.
func prepareDir(dir string) error {
	if dir != PrivateDir() {
		return os.MkdirAll(dir, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return checkPrivateDir(dir)
}

// listenMode binds a Unix socket to path, gives the file group gid (if not
// -1) and mode, and only then listens. Between bind and listen the kernel
// refuses every connection to the socket, so the mode bind left (the
// process umask's) never lets anyone in; no umask change is needed, which
// would race with the other goroutines of the process.
func listenMode(path string, mode fs.FileMode, gid int) (_ net.Listener, err error) {
	fd, err := unixSocket()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // net.FileListener keeps a duplicate
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return nil, fmt.Errorf("set group %d: %w", gid, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return nil, err
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return ul, nil
}

// clearStale makes path free to bind, or explains why it is not.
//
// It does not guard against two servers started at the same instant on the
// same stale socket: both may see it refused, and the later remove can then
// delete the socket the other has just bound. Only a lock file beside the
// socket would close that window; one server per socket directory is the
// supported setup.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netcluster: listen on %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is a %s", ErrNotSocket, path, typeName(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	switch {
	case err == nil:
		c.Close()
		return inUse(path)
	case errors.Is(err, syscall.ECONNREFUSED):
		// Nobody accepts on it: left behind by a crash.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("netcluster: remove stale socket %s: %w", path, err)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed meanwhile
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, os.ErrDeadlineExceeded):
		// The backlog is full or the server is slow: it is alive.
		return inUse(path)
	default:
		return fmt.Errorf("netcluster: listen on %s: cannot tell whether a server is listening: %w", path, shortCause{err})
	}
}

// Dial connects to the Unix socket at path. ctx bounds the connection
// attempt only; cancelling it later does not affect the returned connection.
// A failure wraps ErrNoServer and the system error, e.g. fs.ErrNotExist or
// syscall.ECONNREFUSED, or ctx's error; a socket the server's mode or group
// does not let this user connect to wraps ErrRefused and fs.ErrPermission.
//
// Dial checks who it reaches: in [PrivateDir] it refuses a directory of
// another owner or a wider mode (ErrUnsafeDir), and in a directory that
// group or others may write to it refuses, with an error wrapping
// ErrImpostor, a server whose peer credentials show a user other than this
// process's effective user, root or the directory's owner.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	if err := checkPathLen(path); err != nil {
		return nil, err
	}
	if err := dirError(path); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, noServer(path, err)
	}
	if err := checkServer(c, path); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkPathLen reports a path the kernel would reject with a bare EINVAL.
func checkPathLen(path string) error {
	if len(path) > maxPathLen {
		return fmt.Errorf("%w: %s is %d bytes, the limit on %s is %d (choose a shorter socket directory)",
			ErrPathTooLong, path, len(path), runtime.GOOS, maxPathLen)
	}
	return nil
}

// lookupGroup resolves a group name or numeric gid.
func lookupGroup(group string) (int, error) {
	if gid, err := strconv.Atoi(group); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(g.Gid)
}

func typeName(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "regular file"
	case fs.ModeDir:
		return "directory"
	case fs.ModeSymlink:
		return "symbolic link"
	case fs.ModeNamedPipe:
		return "named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "device"
	default:
		return "non-socket file"
	}
}
