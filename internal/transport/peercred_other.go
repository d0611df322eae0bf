//go:build !linux && !darwin

package transport

import "net"

// PeerCred reports the process on the other end of a connection where the
// platform can tell (Linux and macOS). Here it cannot: ok is always false.
func PeerCred(c net.Conn) (pid, uid int, ok bool) {
	return 0, 0, false
}
