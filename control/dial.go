package control

import (
	"context"
	"net"

	"github.com/netcluster/netcluster/internal/transport"
)

// dialSocket dials the socket at path with the agents' checks: on Unix
// the private socket directory, and the server's uid in a shared
// directory; on Windows the named pipe (see transport.Dial).
func dialSocket(ctx context.Context, path string) (net.Conn, error) {
	return transport.Dial(ctx, path)
}
