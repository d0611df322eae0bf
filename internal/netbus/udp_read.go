package netbus

import (
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// The read side of the UDP transport: one goroutine per socket reads
// batches (recvmmsg on Linux) into inbox; ReadBatch hands their datagrams
// out, cutting coalesced reads (GRO) apart.

const (
	maxBatches  = 8     // read batches of a transport, allocated as load asks for them
	groBatch    = 16    // reads per batch with GRO
	groReadSize = 65536 // a read's buffer with GRO: a coalesced read is at most 64 KiB
)

// udpBatch is one batch read: msgs[:n], or err. ReadBatch takes its
// datagrams in order: msgs[i] from byte off, cut every seg bytes (0: whole).
type udpBatch struct {
	msgs        []ipv4.Message
	n           int
	err         error
	i, off, seg int
	// refs counts who holds the batch: its cursor (t.cur) until it is
	// consumed, and each lease (ReadLease) until released; the last one
	// frees it.
	refs atomic.Int32
	t    *UDPTransport
}

// Release ends a lease (ReadLease): the batch's buffers may be reused
// once every lease of it is released and it is consumed.
func (b *udpBatch) Release() { b.unref() }

func (b *udpBatch) unref() {
	if b.refs.Add(-1) == 0 {
		b.t.free <- b
	}
}

// newBatch allocates a read batch: readBatch reads of readSz bytes, or
// with GRO groBatch reads of groReadSize bytes and their control buffers.
func (t *UDPTransport) newBatch() *udpBatch {
	k, size, oobSize := readBatch, t.readSz, 0
	if t.gro {
		k, size, oobSize = groBatch, groReadSize, groOOBSpace
	}
	buf := make([]byte, k*size)
	oob := make([]byte, k*oobSize)
	b := &udpBatch{msgs: make([]ipv4.Message, k), t: t}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{buf[i*size : (i+1)*size : (i+1)*size]}
		if oobSize > 0 {
			b.msgs[i].OOB = oob[i*oobSize : (i+1)*oobSize : (i+1)*oobSize]
		}
	}
	return b
}

// getBatch returns a free batch, allocating one while fewer than
// maxBatches exist, or nil once the transport is closed.
func (t *UDPTransport) getBatch() *udpBatch {
	select {
	case b := <-t.free:
		return b
	default:
	}
	for n := t.made.Load(); n < maxBatches; n = t.made.Load() {
		if t.made.CompareAndSwap(n, n+1) {
			return t.newBatch()
		}
	}
	select {
	case b := <-t.free:
		return b
	case <-t.done:
		return nil
	}
}

// reader reads batches from one socket into inbox.
func (t *UDPTransport) reader(c *ipv4.PacketConn) {
	defer t.wg.Done()
	for {
		b := t.getBatch()
		if b == nil {
			return
		}
		b.n, b.err = c.ReadBatch(b.msgs, 0)
		b.i, b.off, b.seg = 0, 0, 0
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

// ReadBatch returns datagrams from either socket, copied into ps. A
// batch that does not fit in ps is continued by the next call.
func (t *UDPTransport) ReadBatch(ps []Packet) (int, error) {
	return t.read(ps, false)
}

// ReadLease is ReadBatch without the copy: ps[:n].Data are slices of the
// transport's read buffers (the caller may change their bytes), valid
// until the caller calls Release on the returned Lease, which it must do
// once it is done with them (nil when n is 0). Like ReadBatch it is
// called from one goroutine at a time.
func (t *UDPTransport) ReadLease(ps []Packet) (int, Lease, error) {
	b, err := t.batch()
	if err != nil {
		return 0, nil, err
	}
	b.refs.Add(1) // the lease's
	n, err := t.read(ps, true)
	if n == 0 {
		b.unref()
		return 0, nil, err
	}
	return n, b, err
}

// batch returns the batch being taken from, or the next one read.
func (t *UDPTransport) batch() (*udpBatch, error) {
	if t.cur != nil {
		return t.cur, nil
	}
	var b *udpBatch
	select {
	case b = <-t.inbox:
	case <-t.done:
		return nil, net.ErrClosed
	}
	if b.err != nil {
		err := b.err
		t.free <- b
		return nil, err
	}
	b.refs.Store(1) // the cursor's
	t.cur = b
	return b, nil
}

// read takes datagrams from the current batch into ps: copies, or with
// lend slices of the batch's buffers.
func (t *UDPTransport) read(ps []Packet, lend bool) (int, error) {
	b, err := t.batch()
	if err != nil {
		return 0, err
	}
	n := 0
	for b.i < b.n && n < len(ps) {
		m := &b.msgs[b.i]
		data := m.Buffers[0][:m.N]
		if b.off == 0 {
			if b.seg = groSize(m.OOB[:m.NN]); b.seg > 0 && b.seg < len(data) {
				t.coalesced.Add(1)
			}
		}
		end := segmentEnd(len(data), b.off, b.seg)
		ua, ok := m.Addr.(*net.UDPAddr)
		if ok {
			if lend {
				ps[n].Data = data[b.off:end:end]
			} else {
				k := copy(ps[n].Data[:cap(ps[n].Data)], data[b.off:end])
				ps[n].Data = ps[n].Data[:k]
			}
			ap := ua.AddrPort()
			ps[n].Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			n++
		}
		if !ok || end == len(data) {
			b.i, b.off = b.i+1, 0
		} else {
			b.off = end
		}
	}
	if b.i >= b.n {
		t.cur = nil
		b.unref() // the cursor's
	}
	return n, nil
}

// segmentEnd is where the datagram starting at off ends in a read of n
// bytes cut every seg bytes (seg 0: the read is one datagram). It is
// always past off, unless the read is empty: every call makes progress.
func segmentEnd(n, off, seg int) int {
	if seg <= 0 || off >= n {
		return n
	}
	return min(n, off+seg)
}
