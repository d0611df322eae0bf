package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerCred reports the process ID and user ID of the process on the other
// end of a Unix socket connection (LOCAL_PEERPID and LOCAL_PEERCRED). ok is
// false for other connections.
func PeerCred(c net.Conn) (pid, uid int, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var cred *unix.Xucred
	var credErr, pidErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		pid, pidErr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	}); err != nil || credErr != nil || pidErr != nil {
		return 0, 0, false
	}
	return pid, int(cred.Uid), true
}
