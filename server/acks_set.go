package server

import "sync"

// ackSet is the agents of a channel that a round of the acker may have to
// wait for (acks_round.go): every member with something queued or in a
// write, and not dropped for, disconnecting or given up on, is in it; so
// may be others, which the next round that looks takes out. An idle agent
// costs a round nothing.
//
// An agent enters the set (ackMark) after each change that can make it
// worth waiting for again, all made under its omu: frames queued into its
// empty outbox (deliverTo, and signal for the other frames), a take or a chunk written by its writer
// (tookLocked: progress, its outbox no longer full, its stalls reset),
// drops told (appendDroppedLocked), joining its channel, a queue group
// membership ended (its outbox no longer full). A round takes an agent out
// only under its omu, having found none of this, so no change is missed:
// one made before the round looked is seen by it, one made after marks the
// agent again.
type ackSet struct {
	mu    sync.Mutex
	conns []*conn // each with ackIn 1 and its index in ackAt
}

// States of conn.ackIn.
const (
	ackOut  = 0 // not in its channel's ackSet
	ackIn   = 1 // in it
	ackGone = 2 // left its channel: never again
)

// ackMark puts c in its channel's ackSet if it is not there. One atomic
// load when it is.
func (c *conn) ackMark() {
	if c.ackIn.Load() != ackOut {
		return
	}
	s := &c.ch.acks
	s.mu.Lock()
	if c.ackIn.Load() == ackOut {
		c.ackIn.Store(ackIn)
		c.ackAt = len(s.conns)
		s.conns = append(s.conns, c)
	}
	s.mu.Unlock()
}

// ackForget takes c out of its channel's ackSet for good: it left the
// channel (or never joined it).
func (c *conn) ackForget() {
	c.omu.Lock()
	c.joined.Store(false)
	c.omu.Unlock()
	s := &c.ch.acks
	s.mu.Lock()
	s.removeLocked(c)
	c.ackIn.Store(ackGone)
	s.mu.Unlock()
}

// remove takes c out of the set, if it is in. The acker calls it with
// c.omu held.
func (s *ackSet) remove(c *conn) {
	s.mu.Lock()
	s.removeLocked(c)
	s.mu.Unlock()
}

func (s *ackSet) removeLocked(c *conn) {
	if c.ackIn.Load() != ackIn {
		return
	}
	last := len(s.conns) - 1
	moved := s.conns[last]
	s.conns[c.ackAt], moved.ackAt = moved, c.ackAt
	s.conns[last] = nil
	s.conns = s.conns[:last]
	c.ackIn.Store(ackOut)
}

// appendTo appends the set's agents to dst.
func (s *ackSet) appendTo(dst []*conn) []*conn {
	s.mu.Lock()
	dst = append(dst, s.conns...)
	s.mu.Unlock()
	return dst
}
