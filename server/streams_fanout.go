package server

// What a StreamEnd may cost the others (streams.go). A sender's end is
// told to every agent of version 4 of its channel and the channels it
// propagates to: one connection's end costs work in proportion to them.
// So that one user's churn (connect, announce, close, in a loop) cannot
// take the server's time and its agents' outboxes, the StreamEnds that
// the connections of one uid cause are drawn from a budget of that uid,
// and a receiver's outbox takes them only up to a little past outbuffer.
// A StreamEnd not sent leaves the receiver watching the stream: at most a
// notice of a gap that was none after a later reconnection (false
// alarm), never a loss left untold.

import (
	"sync"
	"time"
)

const (
	// streamEndBurst is the StreamEnds (one per receiver) the ends of one
	// uid's connections may cause at once; streamEndRate is how fast that
	// budget refills, per second. 5,000 receivers of a channel cost one
	// sender's end 5,000.
	streamEndBurst = 1 << 16
	streamEndRate  = 1 << 14
	// streamEndRoom is how far past outbuffer a receiver's outbox takes
	// StreamEnds (at most half of outbuffer): the rest up to twice
	// outbuffer is left to control frames (Pong, Ack, Gone, replies),
	// past which an agent is disconnected (sendControl).
	streamEndRoom = 16 << 10
	// maxFanoutUIDs bounds the budgets kept; past it those full again are
	// forgotten.
	maxFanoutUIDs = 1024
)

// fanout holds the StreamEnd budget of each uid (-1: connections without
// peer credentials, such as in-process ones, share one).
type fanout struct {
	mu    sync.Mutex
	byUID map[int]*fanoutBudget
}

type fanoutBudget struct {
	left   float64
	filled time.Time
}

// take returns how many of n StreamEnds uid may send now (0 to n) and
// takes them from its budget.
func (f *fanout) take(uid int, n int, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byUID == nil {
		f.byUID = make(map[int]*fanoutBudget)
	}
	b := f.byUID[uid]
	if b == nil {
		if len(f.byUID) >= maxFanoutUIDs {
			f.forgetFullLocked(now)
		}
		b = &fanoutBudget{left: streamEndBurst, filled: now}
		f.byUID[uid] = b
	}
	b.left = min(b.left+now.Sub(b.filled).Seconds()*streamEndRate, streamEndBurst)
	b.filled = now
	k := max(min(n, int(b.left)), 0)
	b.left -= float64(k)
	return k
}

// forgetFullLocked forgets the budgets that have refilled: forgetting
// them changes nothing. If none has, it forgets them all (a new budget
// is full), so that memory stays bounded whatever the uids.
func (f *fanout) forgetFullLocked(now time.Time) {
	for uid, b := range f.byUID {
		if b.left+now.Sub(b.filled).Seconds()*streamEndRate >= streamEndBurst {
			delete(f.byUID, uid)
		}
	}
	if len(f.byUID) >= maxFanoutUIDs {
		clear(f.byUID)
	}
}

// streamEndLimit is how many bytes a receiver's outbox may hold for a
// StreamEnd to be queued: outbuffer and streamEndRoom, or half of
// outbuffer if that is less.
func streamEndLimit(outBuffer int) int {
	return outBuffer + min(streamEndRoom, outBuffer/2)
}
