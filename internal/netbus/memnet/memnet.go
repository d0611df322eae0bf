// Package memnet is an in-memory datagram network for tests of package
// netbus: a Hub joins Conns (netbus.PacketTransport implementations), and
// a Filter injects deterministic loss, duplication and reordering.
//
// Datagrams are copied when written, so a writer may reuse its buffer. A
// write to the group goes to every attached Conn including the writer,
// like multicast with loopback on. Each Conn's inbox is bounded
// (HubOptions.Inbox); a full inbox drops, like a socket receive buffer.
package memnet

import (
	"net"
	"net/netip"
	"sync"

	"github.com/netcluster/netcluster/internal/netbus"
)

// Action is a Filter's verdict on one datagram.
type Action uint8

const (
	Pass  Action = iota // deliver
	Drop                // lose it
	Dup                 // deliver it twice
	Delay               // hold it until the next datagram on the same link has been delivered (swaps a pair)
)

// Link is a directed path between two Conns.
type Link struct{ From, To netip.AddrPort }

// Filter decides the fate of the n-th datagram (from 0) sent on a link.
// It is called with the hub's lock held, in send order, so a filter that
// depends only on its arguments gives the same result on every run.
type Filter func(l Link, n uint64, data []byte) Action

// Hub is an in-memory network. All methods may be called concurrently.
type Hub struct {
	mu     sync.Mutex
	conns  map[netip.AddrPort]*Conn
	order  []*Conn // attach order, for deterministic group delivery
	filter Filter
	counts map[Link]uint64
	held   map[Link][]byte
	next   uint16
	inbox  int

	// Stats, guarded by mu.
	sent, dropped, overflow uint64
}

// HubOptions configures NewHub; the zero value is valid.
type HubOptions struct {
	Inbox int // datagrams queued per Conn before drops; default 1 << 16
}

// NewHub returns an empty hub.
func NewHub(opt HubOptions) *Hub {
	if opt.Inbox <= 0 {
		opt.Inbox = 1 << 16
	}
	return &Hub{conns: map[netip.AddrPort]*Conn{}, counts: map[Link]uint64{}, held: map[Link][]byte{}, inbox: opt.Inbox}
}

// SetFilter installs f (nil: deliver everything) for datagrams sent from now on.
func (h *Hub) SetFilter(f Filter) {
	h.mu.Lock()
	h.filter = f
	h.mu.Unlock()
}

// Counts reports datagrams sent (per destination), dropped by the filter and
// dropped because an inbox was full.
func (h *Hub) Counts() (sent, dropped, overflow uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent, h.dropped, h.overflow
}

// Attach adds a Conn with a fresh address 10.0.0.N:4454.
func (h *Hub) Attach() *Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(h.next >> 8), byte(h.next)}), 4454)
	c := &Conn{hub: h, addr: addr, wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.conns[addr] = c
	h.order = append(h.order, c)
	return c
}

// Conn is one node's attachment to a Hub.
type Conn struct {
	hub  *Hub
	addr netip.AddrPort
	wake chan struct{}
	done chan struct{}

	mu     sync.Mutex // guards the fields below
	inbox  []netbus.Packet
	closed bool
	paused chan struct{} // non-nil while writes are paused; closed to resume
}

var _ netbus.PacketTransport = (*Conn)(nil)

// LocalAddr returns the Conn's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.addr }

// PauseWrites makes WriteBatch block, as a full socket send buffer
// would, until ResumeWrites or Close. It lets a test hold a sender's
// queue full.
func (c *Conn) PauseWrites() {
	c.mu.Lock()
	if c.paused == nil {
		c.paused = make(chan struct{})
	}
	c.mu.Unlock()
}

// ResumeWrites releases the writes PauseWrites holds.
func (c *Conn) ResumeWrites() {
	c.mu.Lock()
	if c.paused != nil {
		close(c.paused)
		c.paused = nil
	}
	c.mu.Unlock()
}

// WriteBatch sends each packet to its Addr, or to every Conn when Addr is
// zero. While writes are paused it waits.
func (c *Conn) WriteBatch(ps []netbus.Packet) error {
	c.mu.Lock()
	closed, paused := c.closed, c.paused
	c.mu.Unlock()
	if paused != nil {
		select {
		case <-paused:
		case <-c.done:
			closed = true
		}
	}
	if closed {
		return net.ErrClosed
	}
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ps {
		if p.Addr.IsValid() {
			if dst := h.conns[p.Addr]; dst != nil {
				h.route(c, dst, p.Data)
			}
			continue
		}
		for _, dst := range h.order {
			if h.conns[dst.addr] == dst {
				h.route(c, dst, p.Data)
			}
		}
	}
	return nil
}

// route applies the filter to one datagram on one link. h.mu is held.
func (h *Hub) route(src, dst *Conn, data []byte) {
	l := Link{src.addr, dst.addr}
	n := h.counts[l]
	h.counts[l] = n + 1
	act := Pass
	if h.filter != nil {
		act = h.filter(l, n, data)
	}
	switch act {
	case Drop:
		h.dropped++
		return
	case Delay:
		if h.held[l] == nil {
			h.held[l] = append([]byte(nil), data...)
			return
		}
	}
	h.deliver(src, dst, data)
	if act == Dup {
		h.deliver(src, dst, data)
	}
	if held := h.held[l]; held != nil {
		delete(h.held, l)
		h.deliver(src, dst, held)
	}
}

func (h *Hub) deliver(src, dst *Conn, data []byte) {
	h.sent++
	dst.mu.Lock()
	if dst.closed || len(dst.inbox) >= h.inbox {
		if !dst.closed {
			h.overflow++
		}
		dst.mu.Unlock()
		return
	}
	dst.inbox = append(dst.inbox, netbus.Packet{Data: append([]byte(nil), data...), Addr: src.addr})
	dst.mu.Unlock()
	select {
	case dst.wake <- struct{}{}:
	default:
	}
}

// ReadBatch waits for datagrams and copies up to len(ps) of them into ps.
func (c *Conn) ReadBatch(ps []netbus.Packet) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(c.inbox) > 0 {
			n := 0
			for n < len(ps) && n < len(c.inbox) {
				in := c.inbox[n]
				m := copy(ps[n].Data[:cap(ps[n].Data)], in.Data)
				ps[n].Data = ps[n].Data[:m]
				ps[n].Addr = in.Addr
				n++
			}
			clear(c.inbox[:n])
			c.inbox = c.inbox[n:] // O(1); append reallocates as it grows
			more := len(c.inbox) > 0
			c.mu.Unlock()
			if more {
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
			return n, nil
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
		}
	}
}

// Close detaches the Conn; queued datagrams are discarded.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.inbox = nil
	c.mu.Unlock()
	close(c.done)
	h := c.hub
	h.mu.Lock()
	if h.conns[c.addr] == c {
		delete(h.conns, c.addr)
	}
	h.mu.Unlock()
	return nil
}

// Inject delivers data to l.To as if l.From had sent it, bypassing the
// filter (replays, forgeries). It reports whether l.To is attached.
func (h *Hub) Inject(l Link, data []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	dst := h.conns[l.To]
	if dst == nil {
		return false
	}
	h.deliver(&Conn{addr: l.From}, dst, data)
	return true
}
