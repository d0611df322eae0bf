//go:build !unix

package netbus

import (
	"net"
	"syscall"
)

func reuseAddrPort(fd uintptr) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
}

func multicastAllOff(net.PacketConn) error { return nil }

func forceReadBuffer(*net.UDPConn, int) {} // Linux-only option
