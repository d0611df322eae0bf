//go:build unix

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// inputWait is what awaitInput needs of the socket, made once so that
// waiting allocates nothing: the read tried without waiting (readOnce)
// and its result, and the wait for readability (readable).
type inputWait struct {
	readFn, waitFn func(fd uintptr) bool
	buf            []byte
	n              int
	err            error
	waited         bool
	poll           [1]unix.PollFd
}

// canAwait reports whether the reader can wait for the socket without a
// read buffer (a Unix socket, see initDirect).
func (c *conn) canAwait() bool { return c.dw.raw != nil }

// readNow is frameReader's read while tryRead is set: one read(2) of p,
// errNoInput if the socket has nothing.
func (c *conn) readNow(p []byte) (int, error) {
	if c.iw.readFn == nil {
		c.iw.readFn, c.iw.waitFn = c.readOnce, c.readable
	}
	c.iw.buf = p
	err := c.dw.raw.Read(c.iw.readFn)
	n, rerr := c.iw.n, c.iw.err
	c.iw.buf, c.iw.err = nil, nil
	switch {
	case err != nil:
		return 0, err // the connection was closed
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, errNoInput
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce is one read(2) attempt of iw.buf; returning true tells the
// runtime not to wait.
func (c *conn) readOnce(fd uintptr) bool {
	n, err := syscall.Read(int(fd), c.iw.buf)
	c.iw.n, c.iw.err = max(n, 0), err
	return true
}

// waitReadable waits, holding no buffer, until the socket has something
// to read (bytes, its end, or an error, which the next read reports), or
// is closed.
func (c *conn) waitReadable() error {
	c.iw.waited = false
	return c.dw.raw.Read(c.iw.waitFn)
}

// readable reports whether the socket can be read. The runtime calls it
// first, then again each time the poller says the socket became readable
// (then it is). The first call looks, with a poll(2) that waits for
// nothing: bytes that arrived since the read that found none have had
// their readiness reset by the runtime before it calls this.
func (c *conn) readable(fd uintptr) bool {
	if c.iw.waited {
		return true
	}
	c.iw.waited = true
	c.iw.poll[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	for {
		n, err := unix.Poll(c.iw.poll[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue // a signal, not an answer: the bytes may be there
		}
		return n != 0 || err != nil
	}
}
