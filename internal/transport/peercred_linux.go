package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred reports the process ID and user ID of the process on the other
// end of a Unix socket connection, as they were when it connected
// (SO_PEERCRED). ok is false for other connections.
func PeerCred(c net.Conn) (pid, uid int, ok bool) {
	var cred *unix.Ucred
	ok = controlFD(c, func(fd int) (err error) {
		cred, err = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		return err
	})
	if !ok {
		return 0, 0, false
	}
	return int(cred.Pid), int(cred.Uid), true
}
