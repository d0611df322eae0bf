package server

// Acknowledgements (protocol version 3, docs/PROTOCOL.md section 14): an
// agent numbers the messages it emits (SeqMsg) and keeps each until the
// server acknowledges it (Ack). The server acknowledges a number once
// every message of the connection up to it is delivered: routed into the
// outbox of each recipient, and written from there to the recipient's
// connection (handed to the kernel's socket, or to the in-process pipe's
// reader), or dropped for it (counted, and told with Dropped). What a
// server holds in outboxes when it dies is thus never acknowledged, and
// the agent sends it again to the next server.

import (
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

const (
	// ackInterval is the pause between two rounds of acknowledgements:
	// one Ack per connection per round at most, whatever its rate.
	ackInterval = time.Millisecond
	// ackCheck is how often a round waiting for writers looks again at
	// the recipients whose state may have changed without a write (one
	// the server began to drop for, say); writers that finish a write
	// wake it at once.
	ackCheck = 10 * time.Millisecond
	// ackGiveUp: a recipient whose writer makes no progress for this
	// long (takes nothing, writes no chunk of a batch: writeChunk) is not
	// waited for (a slow consumer); what is queued for it is acknowledged
	// unwritten, and later rounds do not wait for it until its writer
	// makes progress again, so a stuck agent costs its senders one such
	// wait, not one per round. A recipient the server drops messages for,
	// or is disconnecting, is not waited for at all.
	ackGiveUp = time.Second
	// resumeGrace is how long after its start a server holds the
	// messages of an agent that resumes a stream (its first SeqMsg on the
	// connection is not number 1): the agents connected to the server
	// before it restarted come back meanwhile, listeners first, so the
	// messages sent again reach them.
	resumeGrace = 2 * time.Second
	// resumeQuiet: the hold goes on past resumeGrace while agents are
	// still joining, until none has joined for this long (resumeMax at
	// most).
	resumeQuiet = 250 * time.Millisecond
	resumeMax   = 10 * time.Second
)

// onSeqMsg routes a SeqMsg like a Msg (onMsg: the origin checked as one
// comparison, the match from the sender's memo), then records its number
// for the acker.
func (c *conn) onSeqMsg(f wire.Frame) error {
	stream, seq, ok := wire.SeqOf(f.Payload)
	if v := c.gap.stream.Load(); v != 0 && ok && uint32(v) != stream {
		return perr(wire.CodeProtocol, "seqmsg: stream %08x, but this connection announced stream %08x", stream, uint32(v))
	}
	var v wire.MsgView
	if ok && seq != 0 {
		v, ok = wire.ParseMsgFrom(f.Payload[wire.SeqMsgOverhead:], c.msgOrigin())
	}
	if !ok || seq == 0 {
		var err error
		if _, seq, v, err = wire.ParseSeqMsg(f.Payload); err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		if err := c.checkOrigin("seqmsg", &v); err != nil {
			return err
		}
	}
	if len(v.Event) == 0 {
		return perr(wire.CodeMalformed, "seqmsg: empty event name")
	}
	if v.Flags&wire.FlagReplayed != 0 {
		return perr(wire.CodeMalformed, "seqmsg: the replayed flag is the server's to set")
	}
	s := c.sending()
	if !s.seqSeen {
		s.seqSeen = true
		if seq > 1 {
			c.resumeWait()
		}
	}
	s.in.msgs++
	s.in.bytes += uint64(len(v.Data))
	var d delivery // zeroed in place: a literal with constants is built in a copy
	d.raw, d.v, d.seq, d.seqBuf, d.memo, d.counted = f.Raw, &v, true, &s.seqScratch, &s.memo, true
	c.ch.routeDelivery(c, &d)
	if s.bbRun.next != nil {
		c.runBackbone(f.Raw, v.Event) // sendBackbone marked it
	}
	s.in.routed = seq
	return nil
}

// inCounts is what a sender's reader routed of its SeqMsgs and has yet to
// publish: the counts of its connection and channel (msgsIn, bytesIn) and
// the number the acker acknowledges up to (conn.routed, with a kick).
// Publishing them takes four atomic operations, the third of a message's
// routing in the server when it has no recipient (S6 of the bench
// harness); the reader publishes them once per read of its socket
// instead, and before anything else it acts on: see flushIn.
type inCounts struct {
	msgs, bytes uint64
	routed      uint64 // 0: none since the last flush
}

// flushIn publishes what c's reader routed (inCounts). It runs before the
// reader reads its socket again (frameReader.Read), before a frame other
// than a message (a Ping's Pong then follows counts and acknowledgements
// of everything before it), before a pause for a full recipient (stall)
// and when the reader ends: what it routed is counted and acknowledged
// before it waits, as when each message published its own. Only c's
// reader calls it.
func (c *conn) flushIn() {
	s := c.snd
	if s == nil || s.in.msgs == 0 && s.in.routed == 0 {
		return
	}
	if n := s.in.msgs; n > 0 {
		c.msgsIn.Add(n)
		c.ch.stats.msgsIn.Add(n)
		c.ch.stats.bytesIn.Add(s.in.bytes)
		s.in.msgs, s.in.bytes = 0, 0
	}
	if seq := s.in.routed; seq != 0 {
		s.in.routed = 0
		c.routed.Store(seq)
		c.srv.acks.kick(c)
	}
}

// resumeWait holds a resumed stream until the server is resumeGrace old
// and no agent has joined for resumeQuiet, or it is resumeMax old.
func (c *conn) resumeWait() {
	for {
		d := c.srv.graceLeft(time.Now()) // streams.go
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
	}
}

// msgFrame returns the Msg frame of d: the frame as emitted, or the Msg
// form of a SeqMsg.
func (d *delivery) msgFrame() []byte {
	if !d.seq {
		return d.raw
	}
	if d.asMsg == nil {
		*d.seqBuf = wire.AppendMsgOfSeq((*d.seqBuf)[:0], d.raw[wire.HeaderLen:])
		d.asMsg = *d.seqBuf
	}
	return d.asMsg
}
