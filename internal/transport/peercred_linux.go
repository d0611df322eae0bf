package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerCred reports the process ID and user ID of the process on the other
// end of a Unix socket connection, as they were when it connected
// (SO_PEERCRED). ok is false for other connections.
func PeerCred(c net.Conn) (pid, uid int, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return 0, 0, false
	}
	return int(cred.Pid), int(cred.Uid), true
}
