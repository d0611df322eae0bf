//go:build unix

package server

import (
	"net"
	"syscall"
)

// initDirect readies in-place writes, if the connection is a Unix socket
// (see directMax).
func (c *conn) initDirect() {
	sc, ok := c.nc.(*net.UnixConn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.dw.raw = raw
	c.dw.fn = c.writeNonBlocking
}

// writeNonBlocking is one write(2) attempt of dw.buf on the connection's
// non-blocking socket; returning true tells the runtime not to wait for
// the socket to become writable.
func (c *conn) writeNonBlocking(fd uintptr) bool {
	n, err := syscall.Write(int(fd), c.dw.buf)
	c.dw.n, c.dw.err = max(n, 0), err
	return true
}

// sockBuf is the socket's SO_SNDBUF, what its writer can write before
// the agent reads anything; defaultSockBuf if it cannot be read.
func (c *conn) sockBuf() int {
	n := 0
	if c.dw.raw != nil {
		c.dw.raw.Control(func(fd uintptr) {
			n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		})
	}
	if n <= 0 {
		return defaultSockBuf
	}
	return n
}
