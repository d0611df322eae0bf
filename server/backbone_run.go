package server

import (
	"encoding/binary"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/wire"
)

// Runs: the consecutive Msg frames of one delivery from NATS that share
// channel, agent, origin node (written in by their publisher) and event,
// as one agent's stream brings them, are routed once for all: one channel
// lookup, one match, and for each recipient one lock and one copy of the
// whole run into its outbox, instead of each of those per frame (S9's
// host 2 spent a third of its CPU routing frame by frame). Whatever a run
// cannot take as a whole is routed frame by frame as before: so routing,
// drops, pauses and counters stay those of single frames.

// run is the run deliver is building, in the frames of its call.
type run struct {
	at, end int // where it starts and ends in the call's frames
	k       int // frames
	head    int // the size of each frame but its data (equal in a run)
	biggest int // the largest frame's size
}

// extends reports whether the Msg frame f continues the run whose first
// frame sc.v and sc.origin hold: the same channel, agent, node and event
// (its flags and data may differ; routing reads neither).
func (sc *bbScratch) extends(f wire.Frame) bool {
	p := f.Payload
	at := 1 + len(sc.origin)
	ev := sc.v.Event
	end := at + 2 + len(ev)
	return f.Type == wire.TypeMsg && sc.origin != nil && len(p) >= end &&
		string(p[1:at]) == string(sc.origin) &&
		int(binary.BigEndian.Uint16(p[at:])) == len(ev) && string(p[at+2:end]) == string(ev)
}

// flushRun routes the run r of the call's frames (its first frame's view
// in sc.v), resets it, and returns where in frames the last of its frames
// that reached a local agent ends (0: none did; deliver's heard).
func (n *bbNode) flushRun(node backbone.NodeID, frames []byte, r *run, sc *bbScratch) (heardEnd int) {
	ru, b := *r, frames[r.at:r.end]
	*r = run{}
	var heard int
	switch {
	case ru.k == 0:
		return 0
	case ru.k == 1:
		if n.route(node, b, sc) > 0 {
			heard = len(b)
		}
	default:
		var ok bool
		if ok, heard = n.routeRun(b, ru.k, ru.head, ru.biggest, sc); !ok {
			heard = n.routeEach(node, b, sc)
		}
	}
	if heard == 0 {
		return 0
	}
	return ru.at + heard
}

// routeEach routes the frames b of a run one by one, as route does. sc.v
// is left at the last one's view (channel, agent and node are the run's).
// It returns how many bytes of b, from the start, end with a frame that
// reached a local agent.
func (n *bbNode) routeEach(node backbone.NodeID, b []byte, sc *bbScratch) (heard int) {
	at := 0
	for f := range wire.Frames(b) {
		v, _ := parseNetMsg(f.Raw) // checked by parse and extends
		sc.v = v
		at += len(f.Raw)
		if n.route(node, f.Raw, sc) > 0 {
			heard = at
		}
	}
	return heard
}

// routeRun routes the k frames b of a run, each head bytes but its data and
// biggest bytes at most, to the local channel they name, if they can go as
// one: the channel takes network messages, propagates to no other
// channel, dumps nothing, has no queue group of its own to pick a member
// of (NATS picks them, or there are none), and the largest frame fits.
// It reports false, having routed nothing, otherwise. A recipient that
// cannot take the run whole (queueRun) gets it frame by frame. heard is
// how many bytes of b, from the start, end with a frame that reached a
// recipient (queued, or dropped for a full outbox).
func (n *bbNode) routeRun(b []byte, k, head, biggest int, sc *bbScratch) (routed bool, heard int) {
	v := &sc.v
	ch := sc.ch
	if ch == nil || ch.name != unsafeString(v.Channel) {
		ch = (*n.chans.Load())[unsafeString(v.Channel)]
		sc.ch = ch
	}
	if ch == nil || n.dumpnet.Load() {
		return false, 0
	}
	st := ch.settings.Load()
	lim := n.srv.limits.Load()
	if !st.AcceptNet || len(st.targets) > 0 || st.DumpToConsole || biggest-wire.LenSize > lim.maxFrame ||
		(!ch.queues.Empty() && !n.srv.natsGroups(st)) {
		return false, 0
	}
	n.st.routed.Add(uint64(k))
	ch.stats.msgsIn.Add(uint64(k))
	ch.stats.bytesIn.Add(uint64(len(b) - k*head))
	var full, stuck *conn // as deliverLocal's
	for _, c := range ch.index.Match(v.Event) {
		ok, queued, nearlyFull, vain := c.queueRun(b, k, lim, &sc.wakes)
		if queued {
			heard = len(b)
		}
		switch {
		case !ok:
			f, h := n.queueEach(c, b, sc, lim)
			if f != nil {
				full = f
			}
			heard = max(heard, h)
		case nearlyFull && vain:
			stuck = c
		case nearlyFull:
			full = c
		}
	}
	if full == nil {
		full = stuck
	}
	if full != nil {
		sc.wake()
		n.srv.waitRoom(full, true)
	}
	return true, heard
}

// queueRun queues the k frames b for c in one go, as queue would one by
// one, if c is a native agent whose outbox takes them all within its
// bound, and reports queued. It reports ok false, having queued nothing,
// otherwise (and ok true, queued false, for a connection that is
// closing: queue would discard them); and, as
// queue, whether the outbox now holds more than the backbone waits at
// (limits.waitAt) and whether pauses for c have been in vain. A run may
// thus pass that by up to its size (a batch, 256 KiB at most) before the
// caller waits, where frame by frame it would wait after the frame that
// passed.
func (c *conn) queueRun(b []byte, k int, lim *limits, wakes *[]*conn) (ok, queued, nearlyFull, vain bool) {
	if c.full.Load() != 0 {
		return false, false, false, false // a drop is pending: frame by frame (fullDrop)
	}
	c.omu.Lock()
	if c.closing || c.discarding {
		c.omu.Unlock()
		return true, false, false, false
	}
	if c.legacy || c.undecided || c.queuedLocked()+len(b) > lim.outBuffer {
		c.omu.Unlock()
		return false, false, false, false
	}
	n := len(c.obuf)
	c.obuf = c.appendDroppedLocked(c.obuf)
	// Grown only to the room left beside conv and the batch in flight, as
	// queue does.
	c.obuf = appendBounded(c.obuf, b, lim.outBuffer-c.queuedLocked()+len(c.obuf))
	if n == 0 {
		c.ackMark() // as queue does for its first frame
	}
	nearlyFull = c.queuedLocked() > lim.runWaitAt()
	vain = c.stalls > 0
	c.msgsOut += uint64(k)
	c.bytesOut += uint64(len(b))
	c.omu.Unlock()
	c.ch.stats.msgsOut.Add(uint64(k))
	c.ch.stats.bytesOut.Add(uint64(len(b)))
	if n == 0 {
		*wakes = append(*wakes, c)
	}
	return true, true, nearlyFull, vain
}

// queueEach gives c the frames b of a run one by one, as deliverLocal
// would: a frame is dropped for a full outbox or queued, and after each
// frame that leaves c's outbox nearly full the call waits for room, as
// route does. It returns c if its outbox is nearly full after the last,
// and how many bytes of b, from the start, end with a frame c got queued
// or had dropped (routeRun's heard).
func (n *bbNode) queueEach(c *conn, b []byte, sc *bbScratch, lim *limits) (full *conn, heard int) {
	v := &sc.fv
	at := 0
	for f := range wire.Frames(b) {
		at += len(f.Raw)
		if full != nil {
			sc.wake()
			n.srv.waitRoom(full, false)
			full = nil
			lim = n.srv.limits.Load()
		}
		*v, _ = parseNetMsg(f.Raw) // checked by parse and extends
		d := delivery{raw: f.Raw, v: v, patient: true, wakes: &sc.wakes}
		fd := fullDropOf(&d, lim)
		if fd.drops(c) {
			c.ch.stats.dropped.Add(1)
			heard = at
			continue
		}
		nearlyFull, _ := c.queue(&d, lim)
		d.countOut(c.ch)
		if d.reached > 0 {
			heard = at
		}
		if nearlyFull {
			full = c
		}
	}
	*v = wire.MsgView{}
	return full, heard
}
