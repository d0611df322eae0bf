package netbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
)

// UDPConfig configures ListenUDP. See the matching Config fields.
type UDPConfig struct {
	Group       string   // multicast group; default DefaultGroup
	Port        int      // group port, or own port in Peers mode; default DefaultPort
	Interface   string   // multicast interface name; default: the route's
	TTL         int      // multicast TTL; 0 means 0 (this host only)
	Peers       []string // unicast mode when non-empty: "host:port" of every node
	UnicastPort int      // multicast mode: port of the unicast socket; 0 = ephemeral
	ReadSize    int      // receive buffer per datagram; default 9000
}

// UDPTransport is the UDP PacketTransport.
//
// Multicast mode uses two sockets. The group socket is bound to
// group:port with SO_REUSEADDR and SO_REUSEPORT, so several processes on
// one host receive the group (binding the group address, and
// IP_MULTICAST_ALL off on Linux, keep out traffic of other groups on the
// same port). It only receives. The unicast socket (ephemeral port by
// default) sends everything, multicast included, with loopback on so
// processes on the same host hear each other; it receives NAKs and
// retransmissions. Since it is also the source of every datagram a node
// sends, a receiver replies to the source address of a datagram: no
// address needs to be carried in the protocol, and each process on a host
// has its own.
//
// Peers mode uses one socket bound to :Port (no address reuse: two
// processes on one port would steal each other's unicast). A write to the
// group goes to every listed peer.
type UDPTransport struct {
	conns  []*ipv4.PacketConn
	raw    []net.PacketConn
	group  []*net.UDPAddr // destinations of a group write
	local  netip.AddrPort
	inbox  chan *udpBatch
	free   chan *udpBatch
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	readSz int
}

type udpBatch struct {
	msgs []ipv4.Message
	bufs []byte
	n    int
	err  error
}

var _ PacketTransport = (*UDPTransport)(nil)

// checkGroup parses a multicast group and refuses the local network
// control block 224.0.0.0/24: 224.0.0.0 is the reserved base address
// (RFC 5771) and the rest is link-local protocol traffic that switches
// flood to every port. Linux accepts joining and sending to 224.0.0.0
// (tried on lo), so this is policy, not a kernel limit.
func checkGroup(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || !a.IsMulticast() {
		return a, fmt.Errorf("netbus: group %q is not an IPv4 multicast address (use e.g. %s)", s, DefaultGroup)
	}
	if a.As4()[0] == 224 && a.As4()[1] == 0 && a.As4()[2] == 0 {
		return a, fmt.Errorf("%w: %s is in 224.0.0.0/24 (reserved base address / local network control block); use an administratively scoped group such as %s", ErrReservedGroup, s, DefaultGroup)
	}
	return a, nil
}

// CheckGroup reports whether s is a group ListenUDP accepts: an IPv4
// multicast address outside 224.0.0.0/24.
func CheckGroup(s string) error {
	_, err := checkGroup(s)
	return err
}

// ListenUDP opens the UDP transport: multicast, or unicast peers when
// cfg.Peers is set.
func ListenUDP(cfg UDPConfig) (*UDPTransport, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.ReadSize <= 0 {
		cfg.ReadSize = 9000
	}
	t := &UDPTransport{inbox: make(chan *udpBatch, 4), free: make(chan *udpBatch, 8), done: make(chan struct{}), readSz: cfg.ReadSize}
	var err error
	if len(cfg.Peers) > 0 {
		err = t.openPeers(cfg)
	} else {
		err = t.openMulticast(cfg)
	}
	if err != nil {
		for _, c := range t.raw {
			c.Close()
		}
		return nil, err
	}
	for range cap(t.free) {
		b := &udpBatch{msgs: make([]ipv4.Message, readBatch), bufs: make([]byte, readBatch*t.readSz)}
		for i := range b.msgs {
			b.msgs[i].Buffers = [][]byte{b.bufs[i*t.readSz : (i+1)*t.readSz]}
		}
		t.free <- b
	}
	for _, c := range t.conns {
		t.wg.Add(1)
		go t.reader(c)
	}
	return t, nil
}

func (t *UDPTransport) openPeers(cfg UDPConfig) error {
	for _, p := range cfg.Peers {
		ua, err := net.ResolveUDPAddr("udp4", p)
		if err != nil {
			return fmt.Errorf("netbus: peer %q: %w", p, err)
		}
		t.group = append(t.group, ua)
	}
	c, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return fmt.Errorf("netbus: listen on port %d: %w", cfg.Port, err)
	}
	t.raw = append(t.raw, c)
	t.conns = append(t.conns, ipv4.NewPacketConn(c))
	t.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	setBuffers(c)
	return nil
}

func (t *UDPTransport) openMulticast(cfg UDPConfig) error {
	g, err := checkGroup(cfg.Group)
	if err != nil {
		return err
	}
	var ifi *net.Interface
	if cfg.Interface != "" {
		if ifi, err = net.InterfaceByName(cfg.Interface); err != nil {
			return fmt.Errorf("netbus: interface %q: %w", cfg.Interface, err)
		}
	}
	gaddr := &net.UDPAddr{IP: g.AsSlice(), Port: cfg.Port}
	t.group = []*net.UDPAddr{gaddr}

	// Group socket: receive only.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = reuseAddrPort(fd) }); err != nil {
			return err
		}
		return serr
	}}
	gc, err := lc.ListenPacket(context.Background(), "udp4", gaddr.String())
	if err != nil {
		return fmt.Errorf("netbus: bind group %s: %w", gaddr, err)
	}
	t.raw = append(t.raw, gc)
	gp := ipv4.NewPacketConn(gc)
	if err := gp.JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
		return fmt.Errorf("netbus: join %s on %s: %w", g, ifName(ifi), err)
	}
	if err := multicastAllOff(gc); err != nil {
		return fmt.Errorf("netbus: IP_MULTICAST_ALL off: %w", err)
	}
	setBuffers(gc)

	// Unicast socket: sends everything, receives NAKs and retransmissions.
	uc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", cfg.UnicastPort))
	if err != nil {
		return fmt.Errorf("netbus: listen on unicast port %d: %w", cfg.UnicastPort, err)
	}
	t.raw = append(t.raw, uc)
	up := ipv4.NewPacketConn(uc)
	if ifi != nil {
		if err := up.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("netbus: multicast interface %s: %w", ifi.Name, err)
		}
	}
	if err := up.SetMulticastTTL(cfg.TTL); err != nil {
		return fmt.Errorf("netbus: multicast TTL %d: %w", cfg.TTL, err)
	}
	if err := up.SetMulticastLoopback(true); err != nil {
		return fmt.Errorf("netbus: multicast loopback: %w", err)
	}
	setBuffers(uc)
	t.conns = append(t.conns, gp, up)
	t.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	if ip := ifaceIPv4(ifi); ip.IsValid() {
		t.local = netip.AddrPortFrom(ip, t.local.Port())
	}
	return nil
}

func ifName(ifi *net.Interface) string {
	if ifi == nil {
		return "the default interface"
	}
	return ifi.Name
}

func ifaceIPv4(ifi *net.Interface) netip.Addr {
	if ifi == nil {
		return netip.Addr{}
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// setBuffers asks for large socket buffers (best effort: the kernel caps
// them at net.core.[rw]mem_max) to ride out bursts.
//
// With CAP_NET_ADMIN (root) the receive buffer is forced past that cap
// (SO_RCVBUFFORCE), where the platform has it: a receiver that falls
// behind for a moment then loses nothing that NAKs must repair.
func setBuffers(c net.PacketConn) {
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(8 << 20)
		_ = uc.SetWriteBuffer(4 << 20)
		forceReadBuffer(uc, 8<<20)
	}
}

// reader reads batches (recvmmsg on Linux) from one socket into inbox.
func (t *UDPTransport) reader(c *ipv4.PacketConn) {
	defer t.wg.Done()
	for {
		var b *udpBatch
		select {
		case b = <-t.free:
		case <-t.done:
			return
		}
		b.n, b.err = c.ReadBatch(b.msgs, 0)
		err := b.err // b belongs to the consumer once sent
		select {
		case t.inbox <- b:
		case <-t.done:
			return
		}
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
		}
	}
}

// ReadBatch returns datagrams from either socket.
func (t *UDPTransport) ReadBatch(ps []Packet) (int, error) {
	var b *udpBatch
	select {
	case b = <-t.inbox:
	case <-t.done:
		return 0, net.ErrClosed
	}
	defer func() { t.free <- b }()
	if b.err != nil {
		return 0, b.err
	}
	n := 0
	for i := 0; i < b.n && n < len(ps); i++ {
		m := &b.msgs[i]
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		k := copy(ps[n].Data[:cap(ps[n].Data)], m.Buffers[0][:m.N])
		ps[n].Data = ps[n].Data[:k]
		ap := ua.AddrPort()
		ps[n].Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		n++
	}
	return n, nil
}

// WriteBatch sends with sendmmsg where available.
func (t *UDPTransport) WriteBatch(ps []Packet) error {
	msgs := make([]ipv4.Message, 0, len(ps)*len(t.group))
	for _, p := range ps {
		if p.Addr.IsValid() {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{p.Data}, Addr: net.UDPAddrFromAddrPort(p.Addr)})
			continue
		}
		for _, g := range t.group {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{p.Data}, Addr: g})
		}
	}
	sender := t.conns[len(t.conns)-1] // the unicast socket in multicast mode
	var errs []error
	for len(msgs) > 0 {
		n, err := sender.WriteBatch(msgs, 0)
		if err != nil && n <= 0 {
			// This datagram's destination failed (no route, refused by a
			// firewall): skip it, so one bad peer does not silence the
			// others, and report it.
			errs = append(errs, fmt.Errorf("netbus: udp write to %v: %w", msgs[0].Addr, err))
			n = 1
		}
		msgs = msgs[n:]
	}
	return errors.Join(errs...)
}

// LocalAddr is the unicast address (interface address when known).
func (t *UDPTransport) LocalAddr() netip.AddrPort { return t.local }

// Close closes the sockets and waits for the readers.
func (t *UDPTransport) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		var errs []error
		for _, c := range t.raw {
			errs = append(errs, c.Close())
		}
		err = errors.Join(errs...)
		t.wg.Wait()
	})
	return err
}
