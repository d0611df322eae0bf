//go:build !unix && !windows

package transport

import (
	"context"
	"net"
	"path/filepath"
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
