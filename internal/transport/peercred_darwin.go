package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred reports the process ID and user ID of the process on the other
// end of a Unix socket connection (LOCAL_PEERPID and LOCAL_PEERCRED). ok is
// false for other connections.
func PeerCred(c net.Conn) (pid, uid int, ok bool) {
	var cred *unix.Xucred
	ok = controlFD(c, func(fd int) (err error) {
		if cred, err = unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED); err != nil {
			return err
		}
		pid, err = unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		return err
	})
	if !ok {
		return 0, 0, false
	}
	return pid, int(cred.Uid), true
}
