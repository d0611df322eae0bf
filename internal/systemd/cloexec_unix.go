//go:build unix

package systemd

import (
	"errors"

	"golang.org/x/sys/unix"
)

// closeOnExec marks fd close-on-exec after checking it is a listening
// socket.
func closeOnExec(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return err // EBADF: not open
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return err // ENOTSOCK
	}
	if acc == 0 {
		return errors.New("not a listening socket (a socket unit with Accept=yes, or a datagram socket?)")
	}
	return nil
}
