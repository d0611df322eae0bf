package server

// The outbox: frames queued for an agent, and what happens when it is full.

import (
	"fmt"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// deliver queues a message for the agent, or drops it (or disconnects the
// agent) if the agent's outbox is full. It reports whether the outbox is
// more than three quarters full and the sender should pause (see stall).
func (c *conn) deliver(d *delivery) (nearlyFull bool) {
	v := d.v
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return false
	}
	// A frame larger than the bound is accepted into an empty outbox, and
	// does not count against the bound for the frames after it.
	n := len(c.obuf)
	frame := d.frameFor(c)
	if c.legacy {
		c.lscratch = wire.AppendLegacy(c.lscratch[:0], v)
		frame = c.lscratch
	}
	if n > 0 && n-c.obig+len(frame) > lim.outBuffer {
		if lim.disconnectSlow {
			c.omu.Unlock()
			c.ch.stats.slow.Add(1)
			c.closeWithError(&protoError{code: wire.CodeSlowConsumer,
				text: fmt.Sprintf("disconnected as a slow consumer: more than %d bytes queued", lim.outBuffer)})
			c.srv.log.Warn("slow consumer disconnected", "channel", c.ch.name, "agent", c.id)
			return false
		}
		c.pending++
		c.dropped.Add(1)
		c.ch.stats.dropped.Add(1)
		since, warn := c.dropWarnDue(time.Now())
		c.omu.Unlock()
		if warn {
			c.warnDropped(since)
		}
		return false
	}
	if c.pending > 0 && !c.legacy {
		c.obuf = wire.AppendU64(c.obuf, wire.TypeDropped, c.pending)
		c.pending = 0
	}
	c.obuf = append(c.obuf, frame...)
	if n == 0 && len(c.obuf) > lim.outBuffer {
		c.obig = len(c.obuf)
	}
	nearlyFull = !c.stalled && len(c.obuf)-c.obig > lim.outBuffer/4*3
	c.omu.Unlock()
	if d.call && !c.legacy && c.version >= wire.VersionCalls {
		d.answerers++
	}
	c.msgsOut.Add(1)
	c.bytesOut.Add(uint64(len(frame)))
	c.ch.stats.msgsOut.Add(1)
	c.ch.stats.bytesOut.Add(uint64(len(frame)))
	if n == 0 {
		c.signal()
	}
	return nearlyFull
}

// stallMax bounds how long a sender's reader pauses for one nearly full
// recipient; stallBudget bounds the pauses a recipient may cause while its
// writer makes no progress.
const (
	stallMax    = 5 * time.Millisecond
	stallBudget = 100 * time.Millisecond
)

// stall pauses the reader of this connection (the sender) until the
// writer of recipient r has taken its outbox, or for stallMax at most. A
// sender faster than its reader is thus slowed to the reader's pace
// instead of losing messages. A recipient whose writer makes no progress
// for stallBudget of such pauses stops causing them, and then has messages
// dropped (or is disconnected) as configured, so a stuck agent costs its
// senders a tenth of a second, not a pause per message. Deliveries to
// other agents are delayed by a pause, never blocked.
func (c *conn) stall(r *conn) {
	r.omu.Lock()
	if r.closing || r.stalled || len(r.obuf)-r.obig <= c.srv.limits.Load().outBuffer/4*3 {
		r.omu.Unlock()
		return
	}
	if r.room == nil {
		r.room = make(chan struct{})
	}
	room := r.room
	r.omu.Unlock()
	if c.stallTimer == nil {
		c.stallTimer = time.NewTimer(stallMax)
	} else {
		c.stallTimer.Reset(stallMax)
	}
	select {
	case <-room:
		c.stallTimer.Stop()
	case <-r.done:
		c.stallTimer.Stop()
	case <-c.stallTimer.C:
		r.omu.Lock()
		r.stalls += stallMax
		r.stalled = r.stalls >= stallBudget // no more pauses until its writer takes obuf
		r.omu.Unlock()
	}
}

// sendControl queues a frame that is not a message (pong, reply). Such
// frames are not dropped, but an agent that lets them pile up past twice
// its outbox bound is disconnected.
func (c *conn) sendControl(frame []byte) {
	if c.legacy {
		return
	}
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	if len(c.obuf) > 2*lim.outBuffer {
		c.omu.Unlock()
		c.closeWithError(&protoError{code: wire.CodeSlowConsumer, text: "disconnected: not reading its replies"})
		return
	}
	c.obuf = append(c.obuf, frame...)
	c.omu.Unlock()
	c.signal()
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWithError stops deliveries and has the writer send an error frame
// after what is queued (or instead of it, for a slow consumer), then close.
func (c *conn) closeWithError(pe *protoError) {
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	c.closing = true
	// An agent that does not read must not keep its connection: the
	// writer gets lingerTimeout to send what is queued and the error
	// (slowLinger for the error alone, for a slow consumer).
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	var last []byte
	if c.legacy {
		last = appendLegacyError(nil, pe)
	} else {
		last = wire.AppendError(nil, wire.Error{Code: pe.code, Text: pe.text})
	}
	if pe.code == wire.CodeSlowConsumer {
		// Queue group messages go to other members (requeue); the rest
		// is discarded, and the write in flight is cut short so that the
		// error frame comes next (sockWriter).
		_, taken := takeQueued(c.obuf, nil, func(uint32) bool { return true })
		c.unsent = append(c.unsent, taken...)
		c.obuf = c.obuf[:0]
		c.cut, c.cutUntil = last, time.Now().Add(slowLinger)
		c.nc.SetWriteDeadline(time.Now())
	}
	c.obuf = append(c.obuf, last...)
	c.omu.Unlock()
	c.signal()
}

// appendLegacyError tells a legacy agent what went wrong, as an event
// named "nc-error" on the control channel.
func appendLegacyError(dst []byte, pe *protoError) []byte {
	data := fmt.Appendf(nil, `{"code":%d,"error":%q}`, pe.code, pe.text)
	return wire.AppendLegacy(dst, &wire.MsgView{Flags: wire.FlagJSON, Channel: []byte("control"), Event: []byte("nc-error"), Data: data})
}
