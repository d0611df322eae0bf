package netbus

import (
	"net"

	"golang.org/x/sys/unix"
)

func reuseAddrPort(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}

// multicastAllOff stops Linux from delivering datagrams of groups joined by
// other sockets on this port (IP_MULTICAST_ALL defaults to on).
func multicastAllOff(c net.PacketConn) error {
	sc, ok := c.(*net.UDPConn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	}); err != nil {
		return err
	}
	return serr
}

// forceReadBuffer sets SO_RCVBUFFORCE (needs CAP_NET_ADMIN; best effort).
func forceReadBuffer(c *net.UDPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	})
}
