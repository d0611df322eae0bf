//go:build !windows

package control

import (
	"context"
	"net"

	"github.com/netcluster/netcluster/internal/transport"
)

// dialSocket dials the Unix socket at path with the agents' checks: the
// private socket directory, and the server's uid in a shared directory
// (see transport.Dial).
func dialSocket(ctx context.Context, path string) (net.Conn, error) {
	return transport.Dial(ctx, path)
}
