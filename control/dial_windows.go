package control

import (
	"context"
	"net"

	"github.com/Microsoft/go-winio"
)

// dialSocket dials the named pipe at path.
func dialSocket(ctx context.Context, path string) (net.Conn, error) {
	return winio.DialPipeContext(ctx, path)
}
