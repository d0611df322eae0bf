package server

// Request/reply: Calls are routed like messages and counted for
// NoResponders; Answers go to the requesting agent by its address
// (docs/PROTOCOL.md, section 11).

import (
	"bytes"

	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/router"
	"github.com/netcluster/netcluster/internal/wire"
)

// delivery is one Msg or Call being routed.
type delivery struct {
	raw       []byte        // the frame as emitted: a Msg, or a Call when call is set
	v         *wire.MsgView // its fields
	call      bool
	id        uint64 // the Call's request id
	asMsg     []byte // the Call as a Msg frame, for version 1 agents; made when first needed
	legacy    []byte // its legacy envelope, made for the first legacy agent (legacyFrame)
	hasLegacy bool
	scratch   *[]byte // the sender's buffer for legacy, nil for one from the network

	// counted: the sender counts it in its channel's msgsIn and bytesIn
	// itself (conn.flushIn), not routeDelivery.
	counted bool

	// seq marks a SeqMsg (acks.go): agents of version 3 get raw, the
	// others, queue groups and the network its Msg form, made in seqBuf
	// (the sender's) when first needed.
	seq    bool
	seqBuf *[]byte

	// answerers counts the agents able to answer (version 2) that got
	// the Call, as plain listeners or queue group members.
	answerers int
	// fulls, if set, collects the plain recipients whose outboxes are
	// nearly full, in the sender's buffer (conn.fulls).
	fulls *[]*conn
	// drops counts the messages dropped for full outboxes (dropFast) in
	// the channel being delivered to, added to its stats once; outMsgs
	// and outBytes the messages queued (conn.queue), added so too
	// (countOut).
	drops             uint64
	outMsgs, outBytes uint64
	// reached counts the recipients that got it queued, or dropped for
	// a full outbox (counted): a durable consumer acknowledges a message
	// that reached none only if someone still listens (bbNode.deliver).
	reached int

	// inPlace is how many more recipients may have it written in place
	// by the sender's reader (conn_direct.go): some when the sender has
	// sent nothing after it yet, none otherwise.
	inPlace int

	// netGroups: the queue groups this message reaches are NATS-wide and
	// NATS picks their member (backbone_queues.go): routing skips them.
	netGroups bool

	// memo, if set, is the sender's memo of its channel's last match;
	// qmemo, set with it, of its last match of queue groups.
	memo  *router.Memo[*conn]
	qmemo *router.Memo[*qgroup.Group[*conn]]

	// full is set by routeDelivery: the last recipient whose outbox was
	// nearly full, or nil, for a caller without a sender to stall.
	full *conn
	// patient reports a recipient as nearly full even once local senders
	// no longer pause for it (the backbone waits longer: waitRoom).
	patient bool
	// wakes, if set, collects the recipients whose writers are to be
	// woken, for a caller that routes a batch to wake them once after it
	// (bbNode.deliver) rather than after its first message.
	wakes *[]*conn
}

// countOut adds the deliveries d counted to ch's stats, and starts the
// count again.
func (d *delivery) countOut(ch *channel) {
	if d.outMsgs > 0 {
		ch.stats.msgsOut.Add(d.outMsgs)
		ch.stats.bytesOut.Add(d.outBytes)
		d.outMsgs, d.outBytes = 0, 0
	}
}

// match returns the listeners of d's event in ix: from the sender's memo
// when ix is the index of src's own channel (src is not nil) and d has
// the memo.
func (d *delivery) match(ix *router.Index[*conn], src *conn) []*conn {
	if d.memo != nil && src != nil {
		return ix.MatchMemo(d.v.Event, d.memo)
	}
	return ix.Match(d.v.Event)
}

// frameFor returns the frame c gets for d: the frame as emitted, or, for
// a Call to an agent that cannot answer, the Msg of the same fields.
// Legacy agents get their envelope, made by deliver.
func (d *delivery) frameFor(c *conn) []byte {
	if d.seq {
		if c.legacy || c.version >= wire.VersionAcks {
			return d.raw // legacy agents: deliver renders their envelope from d.v
		}
		return d.msgFrame()
	}
	if !d.call || c.legacy || c.version >= wire.VersionCalls {
		return d.raw // legacy agents: deliver renders their envelope from d.v
	}
	return d.msgForm()
}

// msgForm returns the Call d as a Msg frame, made once.
func (d *delivery) msgForm() []byte {
	if d.asMsg == nil {
		d.asMsg = wire.AppendMsg(nil, &wire.Msg{
			Flags:   d.v.Flags,
			Channel: string(d.v.Channel),
			Agent:   string(d.v.Agent),
			Node:    string(d.v.Node),
			Event:   string(d.v.Event),
			Data:    d.v.Data,
		})
	}
	return d.asMsg
}

// legacyFrame returns d's legacy envelope, made once for all the legacy
// agents that get it, in the sender's scratch buffer when there is one
// (routeDelivery hands it over and back).
func (d *delivery) legacyFrame() []byte {
	if !d.hasLegacy {
		if d.scratch != nil {
			*d.scratch = wire.AppendLegacy((*d.scratch)[:0], d.v)
			d.legacy = *d.scratch
		} else {
			d.legacy = wire.AppendLegacy(nil, d.v)
		}
		d.hasLegacy = true
	}
	return d.legacy
}

// checkOrigin is the origin check of a Msg, Call or Answer from c.
func (c *conn) checkOrigin(what string, v *wire.MsgView) error {
	if !bytes.Equal(v.Channel, []byte(c.ch.name)) || string(v.Agent) != c.id || len(v.Node) != 0 {
		return perr(wire.CodeOrigin, "%s origin %q/%q/%q does not match this connection (channel %q, agent %q)",
			what, v.Node, v.Channel, v.Agent, c.ch.name, c.id)
	}
	return nil
}

// call handles a Call frame from c.
func (c *conn) call(f wire.Frame) error {
	id, v, err := wire.ParseCall(f.Payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	if err := c.checkOrigin("call", &v); err != nil {
		return err
	}
	if len(v.Event) == 0 {
		return perr(wire.CodeMalformed, "call: empty event name")
	}
	c.msgsIn.Add(1)
	c.ch.stats.requests.Add(1)
	d := delivery{raw: f.Raw, v: &v, call: true, id: id}
	c.ch.routeDelivery(c, &d)
	return nil
}

// noResponders tells the requester src at once that no one can answer,
// unless the Call went where the server cannot see who listens.
func (ch *channel) noResponders(src *conn, d *delivery, sentToNet bool) {
	if src == nil || d.answerers > 0 || sentToNet {
		return
	}
	ch.stats.noResponders.Add(1)
	src.sendControl(wire.AppendU64(nil, wire.TypeNoResponders, d.id))
}

// answer handles an Answer frame from c: it goes to the agent it is
// addressed to, or is dropped and counted.
func (c *conn) answer(f wire.Frame) error {
	_, to, v, err := wire.ParseAnswer(f.Payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	if err := c.checkOrigin("answer", &v); err != nil {
		return err
	}
	c.ch.stats.replies.Add(1)
	if !c.srv.deliverAnswer(f.Raw, &to, c.idleReader()) {
		c.ch.stats.repliesDropped.Add(1)
	}
	return nil
}

// deliverAnswer queues an Answer for the agent it is addressed to. It
// reports false if that agent is not connected to this server (or cannot
// take answers), or the answer is for another server and cannot go there.
func (s *Server) deliverAnswer(raw []byte, to *wire.AddrView, inPlace bool) bool {
	if len(to.Node) != 0 && string(to.Node) != s.nodeID {
		// The requester's server is reached by multicast or peers, or by
		// the NATS backbone: try both (the requester keeps the first).
		sent := s.sendNetAnswer(raw, to)
		return s.sendBackboneAnswer(raw, to) || sent
	}
	var ch *channel
	if m := s.byName.Load(); m != nil {
		ch = (*m)[string(to.Channel)]
	}
	if ch == nil {
		return false
	}
	r := ch.agent(string(to.Agent))
	if r == nil || r.legacy || r.version < wire.VersionCalls {
		return false
	}
	return r.sendAnswer(raw, inPlace)
}

// sendAnswer queues an Answer like a control frame: not dropped for a
// full outbox, but an agent that lets such frames pile up past twice its
// bound is disconnected. It reports false if c is closing.
func (c *conn) sendAnswer(frame []byte, inPlace bool) bool {
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return false
	}
	if len(c.obuf) > 2*lim.outBuffer {
		c.omu.Unlock()
		c.closeWithError(&protoError{code: wire.CodeSlowConsumer, text: "disconnected: not reading its answers"})
		return false
	}
	n := len(c.obuf)
	c.obuf = append(c.obuf, frame...)
	wake := n == 0 && !(inPlace && c.flushNowLocked() > 0) // else written in place (conn_direct.go)
	c.omu.Unlock()
	if wake {
		c.signal()
	}
	return true
}

// onCallFrame acts on a version 2 frame from c: a Call, an Answer, a
// QueueListen or a QueueUnlisten. Memberships count against maxPatterns
// with the listener patterns.
func (c *conn) onCallFrame(f wire.Frame) error {
	switch f.Type {
	case wire.TypeCall:
		return c.call(f)
	case wire.TypeAnswer:
		return c.answer(f)
	case wire.TypeQueueListen:
		q, err := wire.ParseQueueListen(f.Payload)
		if err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		if c.patterns >= maxPatterns {
			return perr(wire.CodeForbidden, "too many listener patterns (limit %d)", maxPatterns)
		}
		if err := c.queueListen(q); err != nil {
			return err
		}
		c.patterns++
	case wire.TypeQueueUnlisten:
		sid, err := wire.ParseQueueUnlisten(f.Payload)
		if err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		if c.queueUnlisten(sid) {
			c.patterns--
		}
	}
	return nil
}
