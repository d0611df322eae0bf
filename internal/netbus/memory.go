package netbus

import (
	"time"
	"unsafe"
)

// What the receive state costs against Config.MaxMemory, the one bound
// on the memory other nodes can make this one hold: peers, their replay
// windows and streams, gap ranges (the NAK state), out-of-order datagrams
// and partly reassembled messages. Costs are estimates of the heap they
// take, map and slice overhead included; they are accounted, not measured.
const (
	// peerCost is an unproven peer: what the table keeps of a node it
	// has heard only control datagrams from.
	peerCost = int(unsafe.Sizeof(peer{})) + 128
	// provenCost is what proving adds: replay windows and a stream.
	provenCost = int(unsafe.Sizeof(peerWindows{})) + int(unsafe.Sizeof(stream{})) + 512
	// goneCost is a remembered session of a forgotten peer.
	goneCost = int(unsafe.Sizeof(goneSession{})) + 64
)

// mem is the receive state's accounted memory, in bytes.
func (e *streamEnv) mem() int {
	return e.peers*peerCost + e.proven*provenCost + e.gone*goneCost +
		e.ranges*rangeCost + e.pendTotal + e.pendSlots*slotCost + e.partTotal
}

// fits reports whether n more bytes stay within Config.MaxMemory.
func (e *streamEnv) fits(n int) bool { return e.mem()+n <= e.cfg.MaxMemory }

// room makes n bytes fit within Config.MaxMemory for s (nil: a peer
// without a stream), evicting the state of peers that delivered fewer
// messages than s has; false if that is not enough. So a flood of new or
// forged nodes cannot push out a peer whose traffic is being delivered.
func (e *streamEnv) room(n int, s *stream) bool {
	for !e.fits(n) {
		if e.evict == nil || !e.evict(s) {
			return false
		}
	}
	return true
}

// evict drops the windows and stream of the proven peer that delivered
// the fewest messages, if fewer than keep (nil: none) did; it reports
// whether it found one. mu is held.
func (b *Bus) evict(keep *stream) bool {
	var limit uint64
	if keep != nil {
		limit = keep.st.Delivered
	}
	var victim *peer
	for _, p := range b.peers {
		if p.w == nil || (p.s != nil && p.s == keep) {
			continue
		}
		var d uint64
		if p.s != nil {
			d = p.s.st.Delivered
		}
		if d < limit && (victim == nil || d < victim.delivered()) {
			victim = p
		}
	}
	if victim == nil {
		return false
	}
	b.unprove(victim, time.Now())
	b.evicted++
	return true
}

func (p *peer) delivered() uint64 {
	if p.s == nil {
		return 0
	}
	return p.s.st.Delivered
}
