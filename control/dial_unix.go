//go:build !windows

package control

import (
	"context"
	"net"
)

// dialSocket dials the Unix socket at path.
func dialSocket(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}
