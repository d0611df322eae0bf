package memconn

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"
)

// TestNettest runs the x/net conformance suite for net.Conn, with the
// default buffer and with one small enough to make Writes block.
func TestNettest(t *testing.T) {
	for _, size := range []int{DefaultBufferSize, 1024} {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			c1, c2 = Pipe("nettest", WithBufferSize(size))
			return c1, c2, func() {
				c1.Close()
				c2.Close()
			}, nil
		})
	}
}
