package netbus

import (
	"encoding/binary"
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP segmentation offload (Linux 4.18+) and receive coalescing (5.0+).
//
// GSO: one sendmsg carries a run of datagrams of one size (the last may be
// shorter) and a UDP_SEGMENT control message with that size; the kernel
// cuts the run into datagrams as late as it can (in the NIC, or just
// before the receiving socket on veth and loopback), so the stack is
// crossed once per run instead of once per datagram. What travels is
// exactly the datagrams we would have sent one by one.
//
// GRO: with UDP_GRO set, the kernel may hand a socket several datagrams
// of one flow and one size in a single read, with a UDP_GRO control
// message giving their size; ReadBatch cuts them apart again.

// gsoOOBSpace and groOOBSpace are the control buffer sizes of a send and
// a receive.
var (
	gsoOOBSpace = unix.CmsgSpace(2) // UDP_SEGMENT: a u16
	groOOBSpace = unix.CmsgSpace(4) // UDP_GRO: an int
)

// probeGSO reports whether the kernel knows UDP_SEGMENT on c.
func probeGSO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// setGRO turns UDP_GRO on or off on c; an error means the kernel does not
// have it.
func setGRO(c *net.UDPConn, on bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, v)
	}); err != nil {
		return err
	}
	return serr
}

// appendSegmentCmsg appends a UDP_SEGMENT control message for segments
// of size bytes to b.
func appendSegmentCmsg(b []byte, size int) []byte {
	n := len(b)
	b = append(b, make([]byte, gsoOOBSpace)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[n]))
	h.Level = unix.IPPROTO_UDP // SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[n+unix.CmsgLen(0):], uint16(size))
	return b
}

// groSize returns the segment size of a coalesced read from its control
// messages, or 0 when the read is one datagram (no UDP_GRO message, or
// one that cannot be parsed: the read is then taken whole, and if it was
// several datagrams it fails authentication or decoding, counted).
func groSize(oob []byte) int {
	for len(oob) >= unix.CmsgLen(0) {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 4 {
			return int(max(0, int32(binary.NativeEndian.Uint32(data))))
		}
		oob = rest
	}
	return 0
}

// gsoUnsupported reports whether a failed GSO send says that GSO cannot
// work on this path (no checksum offload on the device: EIO; a segment
// above the path MTU or too many segments: EINVAL, EMSGSIZE; an old
// kernel: ENOPROTOOPT, EOPNOTSUPP), rather than that its destination
// failed.
func gsoUnsupported(err error) bool {
	for _, e := range []error{unix.EIO, unix.EINVAL, unix.EMSGSIZE, unix.ENOPROTOOPT, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
