package netbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	NoLoopback  bool     // multicast mode: this host does not hear its own group datagrams
	NoOffload   bool     // no UDP segmentation offload (GSO) nor receive coalescing (GRO)
	Logger      *slog.Logger
}

// UDPTransport is the UDP PacketTransport.
//
// Multicast mode uses two sockets. The group socket is bound to
// group:port with SO_REUSEADDR and SO_REUSEPORT, so several processes on
// one host receive the group (binding the group address, and
// IP_MULTICAST_ALL off on Linux, keep out traffic of other groups on the
// same port). It only receives. The unicast socket (ephemeral port by
// default) sends everything, multicast included, with loopback on so
// processes on the same host hear each other (off with NoLoopback, when
// the host runs one node: it then does not receive each of its own
// datagrams back); it receives NAKs and retransmissions. Since it is also the source of every datagram a node
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
	made   atomic.Int32 // batches allocated, at most maxBatches
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	readSz int
	log    *slog.Logger

	gso     atomic.Bool        // runs of equal datagrams go out in one send (see gso_linux.go)
	gsoSegs int                // the most datagrams in one GSO send
	gsoOnce sync.Once          // logs GSO turned off
	gro     bool               // the sockets coalesce reads (UDP_GRO)
	loop    bool               // multicast mode: IP_MULTICAST_LOOP as the socket reports it
	wfree   chan *writeScratch // WriteBatch's scratch, reused (not a sync.Pool: its registry would keep the transport and its read buffers alive for two GCs after Close)

	cur       *udpBatch     // the batch ReadBatch is taking datagrams from
	coalesced atomic.Uint64 // reads that brought several datagrams (GRO)
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &UDPTransport{inbox: make(chan *udpBatch, 4), free: make(chan *udpBatch, maxBatches), wfree: make(chan *writeScratch, 4), done: make(chan struct{}), readSz: cfg.ReadSize, log: cfg.Logger}
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
	if !cfg.NoOffload {
		t.offload()
	}
	for _, c := range t.conns {
		t.wg.Add(1)
		go t.reader(c)
	}
	return t, nil
}

// offload turns on GSO when the sending socket has it, and GRO when every
// socket has it (a read buffer must hold what a coalesced read brings).
func (t *UDPTransport) offload() {
	udp := make([]*net.UDPConn, 0, len(t.raw))
	for _, c := range t.raw {
		if uc, ok := c.(*net.UDPConn); ok {
			udp = append(udp, uc)
		}
	}
	if len(udp) != len(t.raw) || len(udp) == 0 {
		return
	}
	t.gso.Store(probeGSO(udp[len(udp)-1]))
	t.gsoSegs = gsoMaxSegments
	t.gro = true
	for _, uc := range udp {
		if setGRO(uc, true) != nil {
			t.gro = false
		}
	}
	if !t.gro {
		for _, uc := range udp {
			_ = setGRO(uc, false)
		}
	}
}

// Offload reports whether datagrams are sent with segmentation offload
// (GSO) and read coalesced (GRO). Both are Linux-only; GSO turns itself
// off, logged, when a send says the path cannot do it.
func (t *UDPTransport) Offload() (gso, gro bool) { return t.gso.Load(), t.gro }

// MulticastLoopback reports whether the socket that sends to the group
// has multicast loopback on (IP_MULTICAST_LOOP, read back from the
// socket); false in Peers mode.
func (t *UDPTransport) MulticastLoopback() bool { return t.loop }

// CoalescedReads is the number of reads that brought several datagrams
// at once (GRO).
func (t *UDPTransport) CoalescedReads() uint64 { return t.coalesced.Load() }

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
	if err := up.SetMulticastLoopback(!cfg.NoLoopback); err != nil {
		return fmt.Errorf("netbus: multicast loopback: %w", err)
	}
	t.loop, _ = up.MulticastLoopback()
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
