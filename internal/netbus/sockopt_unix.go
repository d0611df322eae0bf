//go:build unix && !linux

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

func multicastAllOff(net.PacketConn) error { return nil } // Linux-only option

func forceReadBuffer(*net.UDPConn, int) {} // Linux-only option
