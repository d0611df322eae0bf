package server

// Queue groups: memberships, delivery to the member picked for a message,
// and the messages a leaving member had queued and not yet written, which
// go to another member (docs/PROTOCOL.md, section 11).

import (
	"cmp"
	"errors"
	"slices"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/wire"
)

// queueListen handles a QueueListen frame.
func (c *conn) queueListen(q wire.QueueListen) error {
	if err := c.ch.queues.Join(c, q.SID, q.Group, q.Pattern); err != nil {
		if errors.Is(err, qgroup.ErrSIDInUse) {
			return perr(wire.CodeProtocol, "queue listen: %v", err)
		}
		return perr(wire.CodeBadPattern, "queue listen: %v", err)
	}
	c.srv.interestChanged() // the NATS backbone subscribes to the group's pattern
	return nil
}

// queueUnlisten ends membership sid; what was queued for it and not yet
// written goes to other members of its group.
func (c *conn) queueUnlisten(sid uint32) bool {
	k, ok := c.ch.queues.Leave(c, sid)
	if !ok {
		return false
	}
	c.srv.interestChanged()
	c.omu.Lock()
	var taken []byte
	head := headFrame(c.obuf)
	c.obuf, taken = takeQueued(c.obuf, nil, func(s uint32) bool { return s == sid })
	if c.obig > 0 && headFrame(c.obuf) != head {
		c.obig = 0 // the large frame at the head went: the bound is exact again
	}
	c.clearFull()
	c.ackMark() // no longer full (acks_set.go)
	c.omu.Unlock()
	c.ch.redispatch(taken, map[uint32]qgroup.Key{sid: k})
	return true
}

// leaveQueues ends every membership of c, which is leaving, and returns
// their groups by sid for requeue.
func (c *conn) leaveQueues() {
	c.qkeys = c.ch.queues.LeaveAll(c)
	if c.qkeys != nil {
		c.srv.interestChanged()
	}
}

// requeue runs once c's writer has stopped: the QueueMsg frames left in
// its outbox, or cut from the batch its writer failed to write, go to
// other members of their groups.
func (c *conn) requeue() {
	if c.qkeys == nil {
		return
	}
	c.omu.Lock()
	var taken []byte
	var unsent []byte
	if c.slow != nil {
		unsent, c.slow.unsent = c.slow.unsent, nil
	}
	c.obuf, taken = takeQueued(c.obuf, unsent, func(uint32) bool { return true })
	c.omu.Unlock()
	c.ch.redispatch(taken, c.qkeys)
}

// hasRoom reports whether c may be picked for a queue group message
// without waiting: it is open and its outbox is at most three quarters
// full (past that, a delivery would pause the sender).
func (c *conn) hasRoom() bool {
	bound := c.srv.limits.Load().outBuffer / 4 * 3
	c.omu.Lock()
	ok := !c.closing && c.queuedLocked() <= bound
	c.omu.Unlock()
	return ok
}

// deliverQueued queues body (a Msg or Call frame without its length
// prefix) for membership sid of c, as a QueueMsg. ok is false if c is
// closing, or was disconnected as a slow consumer by this delivery: the
// message is then for another member. A message dropped for a full outbox
// (slowconsumer "drop") counts as taken: at most once.
func (c *conn) deliverQueued(sid uint32, body []byte, inPlace bool) (ok, nearlyFull bool) {
	if len(body) == 0 {
		return false, false // cannot happen: bodies are whole frames
	}
	budget := 0
	if inPlace {
		budget = 1
	}
	took, nearlyFull := c.offerQueued(sid, body[0], body[1:], &budget, true)
	return took == qgroup.Took, nearlyFull
}

// offerQueued is deliverQueued for Group.Offer, with the wrapped frame's
// type and payload apart: unless force is set it answers Full, queuing
// nothing, if c has no room (hasRoom), all under one lock. It writes in
// place (conn_direct.go) if *inPlace, the recipients that may still have
// the message so, is above zero, and takes one from *inPlace if it does.
func (c *conn) offerQueued(sid uint32, typ byte, p []byte, inPlace *int, force bool) (took qgroup.Outcome, nearlyFull bool) {
	lim := c.srv.limits.Load()
	size := wire.HeaderLen + wire.QueueMsgOverhead + 1 + len(p)
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return qgroup.Refused, false
	}
	if !force && c.queuedLocked() > lim.outBuffer/4*3 {
		c.omu.Unlock()
		return qgroup.Full, false
	}
	n := len(c.obuf)
	if c.overLocked(size, lim) {
		if c.overflowLocked(lim) {
			return qgroup.Refused, false
		}
		return qgroup.Took, false
	}
	c.obuf = c.appendDroppedLocked(c.obuf)
	c.obuf = wire.AppendQueueOf(c.obuf, sid, typ, p)
	if n == 0 && len(c.obuf) > lim.outBuffer {
		c.obig = len(c.obuf)
	}
	wake := n == 0 && !(*inPlace > 0 && c.flushNowLocked() > 0) // else written in place (conn_direct.go)
	if !wake && n == 0 {
		*inPlace--
	}
	nearlyFull = !c.stalled && c.queuedLocked() > lim.outBuffer/4*3
	c.msgsOut++
	c.bytesOut += uint64(size)
	c.omu.Unlock()
	c.queuedIn.Add(1)
	c.ch.stats.queueMsgs.Add(1)
	c.ch.stats.msgsOut.Add(1)
	c.ch.stats.bytesOut.Add(uint64(size))
	if wake {
		c.signal()
	}
	return qgroup.Took, nearlyFull
}

// routeGroups gives the message to one member of each of ch's groups that
// match its event. It returns a member whose outbox is nearly full, for
// the sender to pause on, if the member picked was one and the group has
// no other with room: while one has room the stream goes on to it, as a
// full member is passed over, not waited for. src is the sender if ch is
// its channel.
func (ch *channel) routeGroups(src *conn, d *delivery) (full *conn) {
	var groups []*qgroup.Group[*conn]
	if src != nil && d.qmemo != nil {
		groups = ch.queues.MatchMemo(d.v.Event, d.qmemo)
	} else {
		groups = ch.queues.Match(d.v.Event)
	}
	if len(groups) == 0 {
		return nil
	}
	// The QueueMsg wraps the Msg (or Call) frame: the frame as sent, or
	// the Msg of a SeqMsg, its payload after the stream and number.
	typ, p := d.raw[wire.LenSize], d.raw[wire.HeaderLen:]
	if d.seq {
		typ, p = wire.TypeMsg, p[wire.SeqMsgOverhead:]
	}
	for _, g := range groups {
		var nearly, forced bool
		passed := 0 // members without room passed over
		m, ok := g.Offer(func(m qgroup.Member[*conn], force bool) qgroup.Outcome {
			took, n := m.S.offerQueued(m.SID, typ, p, &d.inPlace, force)
			switch took {
			case qgroup.Full:
				passed++
			case qgroup.Took:
				nearly, forced = n, force
			}
			return took
		})
		if !ok {
			ch.stats.queueLost.Add(1)
			continue
		}
		d.answerers++
		d.reached++
		// The others were full, or were not offered it: those after m in
		// turn, tried next time, when a full one is passed over.
		if nearly && (forced || passed >= len(g.Members())-1) {
			full = m.S
		}
	}
	return full
}

// redispatch gives the QueueMsg frames in frames, taken from a member
// that left, each to another member of its group (keys maps their sids to
// their groups). A frame whose group has no member left is lost, counted.
func (ch *channel) redispatch(frames []byte, keys map[uint32]qgroup.Key) {
	for f := range wire.Frames(frames) {
		sid, body, ok := wire.SplitQueueMsg(f.Payload)
		var g *qgroup.Group[*conn]
		if k, member := keys[sid]; ok && member {
			g = ch.queues.Group(k)
		}
		if g == nil {
			if k, member := keys[sid]; !ok || !member || !ch.requeueLeft(body, k) {
				ch.stats.queueLost.Add(1)
			}
			continue
		}
		if _, ok := g.Pick((*conn).hasRoom, func(m qgroup.Member[*conn]) bool {
			ok, _ := m.S.deliverQueued(m.SID, body, false)
			return ok
		}); !ok {
			ch.stats.queueLost.Add(1)
			continue
		}
		ch.stats.redispatched.Add(1)
	}
}

// takeQueued moves the QueueMsg frames of buf whose sid matches, and then
// those of more, to a new slice it returns as taken; buf keeps its other
// frames, in order, in place. Frames are whole (buf is an outbox, more the
// unwritten frames of a batch).
func takeQueued(buf, more []byte, match func(sid uint32) bool) (kept, taken []byte) {
	kept = buf[:0]
	for f := range wire.Frames(buf) {
		if isQueuedFor(f, match) {
			taken = append(taken, f.Raw...)
			continue
		}
		kept = append(kept, f.Raw...) // copy moves forward: never past the frame read
	}
	for f := range wire.Frames(more) {
		if isQueuedFor(f, match) {
			taken = append(taken, f.Raw...)
		}
	}
	return kept, taken
}

// isQueuedFor reports whether f is a QueueMsg frame for a sid that matches.
func isQueuedFor(f wire.Frame, match func(sid uint32) bool) bool {
	if f.Type != wire.TypeQueueMsg {
		return false
	}
	sid, _, ok := wire.SplitQueueMsg(f.Payload)
	return ok && match(sid)
}

// headFrame returns the size of the first frame of buf (0 if none): a
// large frame that opens an outbox is counted apart (conn.obig).
func headFrame(buf []byte) int {
	if f, _, ok := wire.Split(buf); ok {
		return len(f.Raw)
	}
	return 0
}

// unwrittenFrames returns a copy of the frames of batch from the first one
// not wholly within its first n bytes: what a failed write did not hand to
// the connection.
func unwrittenFrames(batch []byte, n int) []byte {
	return append([]byte(nil), batch[wire.WholeLen(batch[:n]):]...)
}

// memberships describes c's queue group memberships, by sid.
func (c *conn) memberships() []control.QueueMembership {
	ms := c.ch.queues.Memberships(c)
	if len(ms) == 0 {
		return nil
	}
	out := make([]control.QueueMembership, 0, len(ms))
	for sid, k := range ms {
		out = append(out, control.QueueMembership{SID: sid, Group: k.Name, Pattern: k.Pattern})
	}
	slices.SortFunc(out, func(a, b control.QueueMembership) int { return cmp.Compare(a.SID, b.SID) })
	return out
}

// groups describes the channel's queue groups.
func (ch *channel) groups() []control.GroupInfo {
	var out []control.GroupInfo
	for _, g := range ch.queues.Groups() {
		gi := control.GroupInfo{Group: g.Name, Pattern: g.Pattern, Members: []control.GroupMember{}}
		for _, m := range g.Members() {
			gi.Members = append(gi.Members, control.GroupMember{Agent: m.S.id, SID: m.SID})
		}
		out = append(out, gi)
	}
	return out
}
