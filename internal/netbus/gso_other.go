//go:build !linux

package netbus

import (
	"errors"
	"net"
)

// UDP segmentation offload and receive coalescing are Linux-only: elsewhere
// every datagram is one send and one read (see gso_linux.go).

var (
	gsoOOBSpace = 0
	groOOBSpace = 0
)

func probeGSO(*net.UDPConn) bool { return false }

func setGRO(*net.UDPConn, bool) error { return errors.ErrUnsupported }

func appendSegmentCmsg(b []byte, _ int) []byte { return b }

func groSize([]byte) int { return 0 }

func gsoUnsupported(error) bool { return true }
