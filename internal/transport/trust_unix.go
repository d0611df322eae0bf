//go:build unix

package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// PrivateDir returns the per-user socket directory, <temp dir>/netcluster-<euid>,
// which the socket-directory rule falls back to for a user with neither a
// configured directory nor $XDG_RUNTIME_DIR. [Listen] creates it with mode
// 0700; Listen and [Dial] refuse it, with an error wrapping ErrUnsafeDir, if
// it exists with another owner or a mode that lets group or others in: in
// the shared temp dir another user could have made it first to capture
// the sockets.
func PrivateDir() string {
	return filepath.Join(os.TempDir(), "netcluster-"+strconv.Itoa(os.Geteuid()))
}

// checkPrivateDir reports why dir cannot serve as [PrivateDir].
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is a %s, not a directory", ErrUnsafeDir, dir, typeName(fi.Mode()))
	}
	if owner := ownerOf(fi); owner != os.Geteuid() {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d); another user may have made it to capture your sockets (remove it, or set a socket directory)",
			ErrUnsafeDir, dir, owner, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o; it must let in no one but you (0700)", ErrUnsafeDir, dir, perm)
	}
	return nil
}

// checkServer makes sure that c, dialled at path, is served by a user the
// agent can trust. It matters only in a shared directory, one that group
// or others may write to: there anyone could have bound the channel's
// name before the real server. The server must then run as the agent's own
// user, as root, or as the directory's owner (who controls its entries
// anyway). Elsewhere only those users could have made the socket.
func checkServer(c net.Conn, path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	owner := -1
	if err == nil {
		owner = ownerOf(fi)
	}
	_, uid, ok := PeerCred(c)
	if !ok {
		return fmt.Errorf("%w: %s is in %s, which others may write to, and this platform cannot tell which user serves it",
			ErrImpostor, path, dir)
	}
	if uid == os.Geteuid() || uid == 0 || uid == owner {
		return nil
	}
	return fmt.Errorf("%w: %s is served by uid %d, not by you (uid %d), root or the owner of %s (uid %d); others may write to %s, so anyone could have bound that name first",
		ErrImpostor, path, uid, os.Geteuid(), dir, owner, dir)
}

// ownerOf returns the uid that owns fi.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// dirError wraps a refused [PrivateDir] for Dial; a missing one only
// means there is no server.
func dirError(path string) error {
	dir := filepath.Dir(path)
	if dir != PrivateDir() {
		return nil
	}
	if err := checkPrivateDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
