package netcluster

import "unsafe"

// The receive path allocates each message and its data from slabs, and
// reuses the strings of event, channel and agent names seen before: a
// handler owns its *Message, so nothing can be recycled (unless it opts
// in: WithBorrowedMessages, borrow.go), but one allocation per hundred
// messages beats several per message.

const (
	// msgSlab is the messages per slab: as many as fill 16 KiB, a size
	// class of its own (157 of 104 bytes on 64-bit platforms).
	msgSlab      = 16 << 10 / int(unsafe.Sizeof(Message{}))
	callSlab     = 32       // request calls per slab
	dataSlab     = 16 << 10 // bytes per data slab (below the large-object size)
	maxSlabData  = 1 << 10  // larger data gets its own allocation
	maxInterned  = 4096     // distinct names remembered
	maxInternLen = 256      // longer names are not remembered
)

// recvAlloc is owned by one connection's reader goroutine.
type recvAlloc struct {
	msgs  []Message
	calls []call
	data  []byte
	names map[string]string
	// last holds the name each field (event, channel, agent, node) had in
	// the previous message: a stream repeats them, and one comparison is
	// cheaper than a map lookup.
	last [4]string
	// hdr is the header of the last SeqMsg a Message was made of, while
	// last holds its fields (recv_seq.go).
	hdr []byte
	// Under WithBorrowedMessages (borrow.go): stock holds handled slabs,
	// taken before new ones are made, and rec what recycling needs.
	stock slabs
	rec   *recycler
}

// Fields whose last name recvAlloc remembers.
const (
	fieldEvent = iota
	fieldChannel
	fieldAgent
	fieldNode
)

// field returns b as a string, as name does, for field f.
func (r *recvAlloc) field(f int, b []byte) string {
	if s := r.last[f]; s == string(b) {
		return s
	}
	s := r.name(b)
	r.last[f] = s
	return s
}

// message returns a zeroed Message of its own from the slab.
func (r *recvAlloc) message() *Message {
	if len(r.msgs) == 0 {
		if k := len(r.stock.msgs); k > 0 { // borrow.go
			r.msgs = r.stock.msgs[k-1]
			r.stock.msgs = r.stock.msgs[:k-1]
		} else {
			r.msgs = make([]Message, msgSlab)
		}
	}
	m := &r.msgs[0]
	r.msgs = r.msgs[1:]
	return m
}

// call returns a call of its own from the slab, for a request's Message.
func (r *recvAlloc) call(a *Agent, id uint64) *call {
	if len(r.calls) == 0 {
		r.calls = make([]call, callSlab)
	}
	c := &r.calls[0]
	r.calls = r.calls[1:]
	c.agent, c.id = a, id
	return c
}

// bytes returns a copy of b. Copies share slabs, capped so that appending
// to one never writes into another.
func (r *recvAlloc) bytes(b []byte) []byte {
	if len(b) > maxSlabData {
		return append([]byte(nil), b...)
	}
	if len(r.data) < len(b) {
		if k := len(r.stock.data); k > 0 { // borrow.go
			r.data = r.stock.data[k-1]
			r.stock.data = r.stock.data[:k-1]
		} else {
			r.data = make([]byte, dataSlab)
		}
	}
	n := copy(r.data, b)
	out := r.data[:n:n]
	r.data = r.data[n:]
	return out
}

// name returns b as a string, the same string for the same bytes while it
// is remembered.
func (r *recvAlloc) name(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := r.names[string(b)]; ok {
		return s
	}
	if r.names == nil || len(r.names) >= maxInterned {
		r.names = make(map[string]string)
	}
	s := string(b)
	r.names[s] = s
	return s
}
