package server

// Sending to the NATS backbone: a local agent's messages, paced while NATS
// takes less than the agents send. The SeqMsgs a reader finds back to back
// in its read buffer, on one event, go to the backbone as one run (one
// lock of its queue, not one per message).

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/netcluster/netcluster/internal/wire"
)

// sendBackbone publishes a message src emitted on ch (d's Msg frame: a
// SeqMsg's goes as its Msg payload, framed by the backbone in its batch
// rather than first made whole here). A SeqMsg is marked for src's run
// (bbRun), which its reader adds it to once it is routed (onSeqMsg: d
// holds a pointer to the message's view on the reader's stack, which
// anything of d kept here would move to the heap); anything else is sent at
// once, after the run. The backbone counts what it could not publish.
// When NATS takes less than the agents send, the sender waits (pace).
func (s *Server) sendBackbone(src *conn, ch *channel, d *delivery) {
	n := s.bb.Load()
	if n == nil {
		src.flushBackbone()
		return
	}
	if d.seq && d.asMsg == nil && ch == src.ch {
		src.snd.bbRun.next = n
		return
	}
	src.flushBackbone()
	err := n.b.Send(ch.name, unsafeString(d.v.Event), d.msgFrame())
	src.backboneHandedOver()
	if err == nil && n.b.Crowded() {
		src.flushIn() // what it routed before is acknowledged meanwhile
		n.pace()
	}
}

// backboneBusy marks c's reader as holding a message routed for the
// backbone and not yet handed over, before the message is matched against
// the listeners; backboneHandedOver clears the mark once nothing is held
// (no run, no message marked for one). A replay waits for the marks it
// sees to clear (waitHandedOver): what an agent of this server emitted
// before a WithReplay listener was registered is then stored before the
// stream is read, where it would otherwise be neither replayed nor live.
// Only c's reader writes bbGen: a load and a store, no read-modify-write.
func (c *conn) backboneBusy() {
	if g := c.bbGen.Load(); g&1 == 0 {
		c.bbGen.Store(g + 1)
	}
}

func (c *conn) backboneHandedOver() {
	if c.snd != nil && (len(c.snd.bbRun.frames) > 0 || c.snd.bbRun.next != nil) {
		return
	}
	if g := c.bbGen.Load(); g&1 == 1 {
		c.bbGen.Store(g + 1)
	}
}

// bbRun is a sender's SeqMsgs on one channel and event, whole and back to
// back in its read buffer, not yet handed to the backbone. Only the
// sender's reader uses it. The frames alias the read buffer: the run is
// handed over (flushBackbone) before the buffer is read into again (the
// next frame is not all in it: readNative), and before anything else the
// reader does with the agent's frames or the backbone: another frame than
// a SeqMsg, a message sent at once (sendBackbone), a pause (for a
// recipient or for NATS), the connection's end. A run holds no more than
// one read buffer, so it waits for no more than the reader takes to
// route what it read in one go; it is acknowledged as soon as it is
// routed (onSeqMsg), as a message in the backbone's queue is.
type bbRun struct {
	n      *bbNode
	ch     *channel
	event  []byte
	frames []byte
	// next is set by sendBackbone for the SeqMsg being routed: the
	// backbone its reader adds it to the run for once it is routed.
	next *bbNode
}

// runBackbone adds raw, a SeqMsg frame of c on event, to c's run: at its
// end if it follows the run's last frame in the read buffer and has its
// event, else as a new run after handing over the last one.
func (c *conn) runBackbone(raw, event []byte) {
	r := &c.snd.bbRun
	n, ch := r.next, c.ch
	if len(r.frames) > 0 && r.n == n && r.ch == ch && string(r.event) == string(event) &&
		uintptr(unsafe.Pointer(unsafe.SliceData(raw))) == uintptr(unsafe.Pointer(unsafe.SliceData(r.frames)))+uintptr(len(r.frames)) {
		r.next = nil
		r.frames = unsafe.Slice(unsafe.SliceData(r.frames), len(r.frames)+len(raw))
		return
	}
	c.flushBackbone() // next still set: raw, routed, keeps the mark (backboneBusy)
	r.next = nil
	r.n, r.ch, r.event, r.frames = n, ch, event, raw
}

// flushBackbone hands c's run to the backbone, pausing (pace) wherever
// the backbone finds its queue crowded, as after a message sent alone.
// Only c's reader calls it.
func (c *conn) flushBackbone() {
	if c.snd == nil || len(c.snd.bbRun.frames) == 0 {
		c.backboneHandedOver()
		return
	}
	// What the reader routed, the run included, is counted and
	// acknowledged first (flushIn): the hand-over may pause the reader
	// (pace, up to bbWaitBudget), and a run is acknowledged once routed.
	c.flushIn()
	r := &c.snd.bbRun
	n, ev, rest := r.n, unsafeString(r.event), r.frames
	if h := n.flushHook.Load(); h != nil {
		(*h)()
	}
	for len(rest) > 0 {
		var crowded bool
		rest, crowded = n.b.SendSeqMsgs(r.ch.name, ev, rest)
		if crowded {
			n.pace()
		}
	}
	// next stays: a pause for a recipient (routeDelivery) comes between
	// sendBackbone's mark and runBackbone.
	r.n, r.ch, r.event, r.frames = nil, nil, nil, nil
	c.backboneHandedOver()
}

// nextBuffered reports whether the next frame is all in the read buffer:
// reading it then moves nothing in the buffer (bufio slides what it holds
// to its start before it reads into it).
func (c *conn) nextBuffered() bool {
	k := c.br.Buffered()
	if k < wire.LenSize {
		return false
	}
	hdr, _ := c.br.Peek(wire.LenSize)
	return uint64(wire.LenSize)+uint64(binary.BigEndian.Uint32(hdr)) <= uint64(k)
}

// pace pauses the calling sender's reader while the backbone's outbound
// queue is crowded (NATS connected but slower than the local agents), as
// a local sender is paused for a nearly full recipient: its messages wait
// in its socket and its agent instead of being dropped at the queue's
// bound. A pause lasts until the queue is back to three quarters of
// outbuffer, stallMax at most, and all pauses of all senders draw on one
// credit (bbWaitBudget, refilled as pauseCredit is): a NATS that stays
// slower than the senders costs them at most that, after which what does
// not fit is dropped and counted, as during an outage.
func (n *bbNode) pace() {
	for {
		n.pmu.Lock()
		now := time.Now()
		credit := n.paceCredit.refill(now, bbWaitBudget)
		n.pmu.Unlock()
		if credit <= 0 {
			return
		}
		room := n.b.WaitRoom(min(stallMax, credit))
		n.pmu.Lock()
		n.paceCredit.left -= time.Since(now)
		n.pmu.Unlock()
		if room || !n.b.Crowded() {
			return
		}
	}
}
