//go:build linux || darwin

package transport

import (
	"net"
	"syscall"
)

// controlFD runs f on the descriptor of c, if c has one, and reports
// whether it could (and f succeeded).
func controlFD(c net.Conn, f func(fd int) error) bool {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return false
	}
	return ferr == nil
}
