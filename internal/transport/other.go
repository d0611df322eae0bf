//go:build !unix && !windows

package transport

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// SocketPath returns where channel would listen: dir/netcluster-<channel>.
func SocketPath(dir, channel string) string {
	return filepath.Join(dir, "netcluster-"+channel)
}

// Listen returns ErrNotSupported: this platform has no local sockets.
func Listen(path string, cfg ListenConfig) (net.Listener, error) {
	return nil, ErrNotSupported
}

// Dial returns ErrNotSupported: this platform has no local sockets.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	return nil, ErrNotSupported
}

// PrivateDir returns the per-user socket directory of the socket-directory
// rule, <temp dir>/netcluster-<euid>. This platform has no local sockets.
func PrivateDir() string {
	return filepath.Join(os.TempDir(), "netcluster-"+strconv.Itoa(os.Geteuid()))
}
