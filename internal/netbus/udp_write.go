package netbus

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"golang.org/x/net/ipv4"
)

// The write side of the UDP transport: WriteBatch turns packets into
// messages for one sendmmsg, a run of datagrams of one size to one
// destination becoming one message with GSO (see gso_linux.go).

// Limits of one GSO send: the kernel's UDP_MAX_SEGMENTS (64 before Linux
// 6.15), and an IPv4 datagram's 65,535 bytes less the IP and UDP headers.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65535 - 20 - 8
)

// writeScratch is what one WriteBatch builds; reused.
type writeScratch struct {
	runs []run
	msgs []ipv4.Message
	bufs [][]byte
	oob  []byte
}

// run is ps[first:end], sent as one message to each of its destinations.
type run struct{ first, end int }

// gsoRuns cuts ps into runs of consecutive packets to the same
// destination, all of the first one's size but the last, which may be
// shorter, at most segs of them and gsoMaxBytes in all (segs 0 or 1: one
// packet each, no GSO).
func gsoRuns(ps []Packet, segs int, dst []run) []run {
	for i := 0; i < len(ps); {
		j := i + 1
		if size := len(ps[i].Data); segs > 1 && size > 0 {
			total := size
			for j < len(ps) && j-i < segs && ps[j].Addr == ps[i].Addr &&
				len(ps[j-1].Data) == size && len(ps[j].Data) > 0 && len(ps[j].Data) <= size &&
				total+len(ps[j].Data) <= gsoMaxBytes {
				total += len(ps[j].Data)
				j++
			}
		}
		dst = append(dst, run{i, j})
		i = j
	}
	return dst
}

// build fills w.msgs for ps: one message per run and destination (a zero
// Addr is every address of group).
func (w *writeScratch) build(ps []Packet, group []*net.UDPAddr, segs int) {
	w.runs = gsoRuns(ps, segs, w.runs[:0])
	w.msgs, w.bufs, w.oob = w.msgs[:0], w.bufs[:0], w.oob[:0]
	w.bufs = slices.Grow(w.bufs, len(ps)) // no growth below: the slices taken stay valid
	w.oob = slices.Grow(w.oob, len(w.runs)*gsoOOBSpace)
	for _, r := range w.runs {
		k := len(w.bufs)
		for _, p := range ps[r.first:r.end] {
			w.bufs = append(w.bufs, p.Data)
		}
		bufs := w.bufs[k:len(w.bufs):len(w.bufs)]
		var oob []byte
		if r.end-r.first > 1 {
			o := len(w.oob)
			w.oob = appendSegmentCmsg(w.oob, len(ps[r.first].Data))
			oob = w.oob[o:len(w.oob):len(w.oob)]
		}
		if a := ps[r.first].Addr; a.IsValid() {
			w.msgs = append(w.msgs, ipv4.Message{Buffers: bufs, OOB: oob, Addr: net.UDPAddrFromAddrPort(a)})
			continue
		}
		for _, g := range group {
			w.msgs = append(w.msgs, ipv4.Message{Buffers: bufs, OOB: oob, Addr: g})
		}
	}
}

// release drops the scratch's references to the packets and keeps it
// for the next WriteBatch (a few are kept: WriteBatch may run
// concurrently).
func (t *UDPTransport) release(w *writeScratch) {
	clear(w.bufs[:cap(w.bufs)])
	clear(w.msgs[:cap(w.msgs)])
	select {
	case t.wfree <- w:
	default:
	}
}

// WriteBatch sends with sendmmsg where available, runs of datagrams
// with GSO where the kernel has it.
func (t *UDPTransport) WriteBatch(ps []Packet) error {
	var w *writeScratch
	select {
	case w = <-t.wfree:
	default:
		w = &writeScratch{}
	}
	defer t.release(w)
	segs := 0
	if t.gso.Load() {
		segs = t.gsoSegs
	}
	w.build(ps, t.group, segs)
	sender := t.conns[len(t.conns)-1] // the unicast socket in multicast mode
	var errs []error
	msgs := w.msgs
	for len(msgs) > 0 {
		n, err := sender.WriteBatch(msgs, 0)
		if err != nil && n <= 0 {
			if msgs[0].OOB != nil && gsoUnsupported(err) {
				t.gsoOff(err)
				msgs = splitRuns(msgs)
				continue
			}
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

// gsoOff stops GSO after a send that says it cannot work here.
func (t *UDPTransport) gsoOff(err error) {
	t.gso.Store(false)
	t.gsoOnce.Do(func() {
		t.log.Warn("netbus: UDP segmentation offload (GSO) failed, sending datagram by datagram", "err", err)
	})
}

// splitRuns returns msgs with every GSO message replaced by one message
// per datagram.
func splitRuns(msgs []ipv4.Message) []ipv4.Message {
	out := make([]ipv4.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.OOB == nil {
			out = append(out, m)
			continue
		}
		for _, d := range m.Buffers {
			out = append(out, ipv4.Message{Buffers: [][]byte{d}, Addr: m.Addr})
		}
	}
	return out
}
