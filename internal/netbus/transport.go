package netbus

import "net/netip"

// Packet is one datagram crossing a PacketTransport.
type Packet struct {
	// Data is the datagram. For ReadBatch, the caller provides the buffer
	// (len(Data) is its size) and the transport reslices it to the datagram.
	Data []byte
	// Addr is the peer's unicast address. On write, the zero Addr means
	// "the whole group" (multicast, or every configured peer); on read, it
	// is the sender's unicast address, where replies (NAKs,
	// retransmissions) can be sent.
	Addr netip.AddrPort
}

// PacketTransport is what the protocol needs from a network: best-effort,
// unordered, possibly duplicated datagrams to the whole group or to one
// member. Reliability, ordering, batching and security are the protocol's
// job, never the transport's. Implementations: the UDP transport (ListenUDP)
// and the in-memory hub in package memnet; a NATS backbone can implement
// it by publishing to a group subject and mapping node inboxes onto
// addresses.
//
// WriteBatch may be called concurrently with itself and with ReadBatch.
// ReadBatch is called from one goroutine at a time. After Close, ReadBatch
// returns an error (net.ErrClosed for the implementations here) and
// WriteBatch fails; Close may be called more than once.
type PacketTransport interface {
	// WriteBatch sends every packet; an error means some may not have
	// been sent (a datagram network may drop them anyway).
	WriteBatch(ps []Packet) error
	// ReadBatch blocks until at least one datagram arrives, fills ps[:n]
	// and returns n. Datagrams longer than the buffer are truncated.
	ReadBatch(ps []Packet) (n int, err error)
	// LocalAddr is the unicast address replies reach this node at.
	LocalAddr() netip.AddrPort
	// Close releases the transport and unblocks ReadBatch.
	Close() error
}

// Lease holds buffers a transport lent (UDPTransport.ReadLease) until
// Release.
type Lease interface{ Release() }

// leaser is what a transport that lends its read buffers offers; the Bus
// uses it instead of ReadBatch when the transport has it.
type leaser interface {
	ReadLease(ps []Packet) (int, Lease, error)
}

var _ leaser = (*UDPTransport)(nil)
