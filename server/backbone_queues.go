package server

// Queue groups across servers on the NATS backbone: on a channel that
// propagates to NATS and accepts the network (not durable), each queue
// group is one NATS queue subscription per server that has members
// (backbone.SetGroups), and NATS, not the server, picks the server that
// gets each message for the group; that server then picks one of its
// members. So routing skips such groups for messages that go to NATS
// (the origin server takes part in NATS's pick like any other) and for
// messages that came from NATS on a plain subscription; deliverGroup
// gets what NATS picked this server for.

import (
	"encoding/hex"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/wire"
)

// natsGroups reports whether the queue groups reached by a message on a
// channel with settings st are NATS-wide: st accepts the network and is
// not durable (a durable channel's groups stay per server), and there is
// a backbone.
func (s *Server) natsGroups(st *settings) bool {
	return st != nil && st.AcceptNet && st.Durable == nil && s.bb.Load() != nil
}

// groupsOf appends ch's queue groups as the backbone names them.
func groupsOf(out []backbone.Group, ch *channel) []backbone.Group {
	for _, g := range ch.queues.Groups() {
		out = append(out, backbone.Group{Channel: ch.name, Name: g.Name, Pattern: g.Pattern})
	}
	return out
}

// deliverGroup is the backbone's DeliverGroupFunc: NATS picked this
// server for group g for a Msg or Call emitted on another channel's
// subject (g's own, or one that propagates to g's channel here); one
// member gets it. A message for a group that has no member left here (its
// last member left while NATS was handing it over) is lost, counted.
func (n *bbNode) deliverGroup(node backbone.NodeID, g backbone.Group, frame []byte) {
	n.st.received.Add(1)
	f, rest, ok := wire.Split(frame)
	if !ok || len(rest) != 0 || f.Type != wire.TypeMsg && f.Type != wire.TypeCall {
		n.st.malformed.Add(1)
		return
	}
	var id uint64
	var v wire.MsgView
	var err error
	if f.Type == wire.TypeCall {
		id, v, err = wire.ParseCall(f.Payload)
	} else {
		v, err = wire.ParseMsg(f.Payload)
	}
	if err != nil || len(v.Event) == 0 {
		n.st.malformed.Add(1)
		return
	}
	// The origin is node (the envelope's, or the one a requeue names),
	// not the frame's Node: a peer's frame that names this server does
	// not pass as local.
	var name [16]byte
	hex.Encode(name[:], node[:])
	origin := string(name[:])
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	if origin != n.srv.nodeID {
		m.Node = origin // this server's own messages have an empty node
	}
	chans := *n.chans.Load()
	ch := chans[m.Channel]
	var size int
	if f.Type == wire.TypeCall {
		size = wire.CallSize(&m)
	} else {
		size = wire.MsgSize(&m)
	}
	if n.srv.netVerdict(ch, size, &n.st.unknownChannel, &n.st.refused) != "" {
		return
	}
	t := chans[g.Channel]
	if t == nil || t != ch && !ch.propagatesTo(t) {
		n.st.refused.Add(1)
		return
	}
	d := delivery{call: f.Type == wire.TypeCall, id: id}
	var nv wire.MsgView
	if d.call {
		d.raw = wire.AppendCall(make([]byte, 0, size), id, &m)
		g, _, _ := wire.Split(d.raw)
		_, nv, _ = wire.ParseCall(g.Payload)
	} else {
		d.raw = wire.AppendMsg(make([]byte, 0, size), &m)
		g, _, _ := wire.Split(d.raw)
		nv, _ = wire.ParseMsg(g.Payload)
	}
	d.v = &nv
	n.st.routed.Add(1)
	full, taken := t.routeGroup(&d, qgroup.Key{Name: g.Name, Pattern: g.Pattern})
	if !taken {
		// No member left here (the last left while NATS was handing
		// this over): for NATS to pick another server.
		m.Node = origin
		t.requeueNet(ch, &m, d.call, id, g)
	}
	if full != nil {
		n.srv.waitRoom(full, false) // as for plain deliveries from NATS
	}
}

// requeueNet publishes m, a Msg or Call of channel x (its Node the
// origin's, never empty) that was for group g of ch and that no member of
// ch took, again on NATS for g (backbone.Requeue), counting it as
// redispatched, or as lost if it cannot be published.
func (ch *channel) requeueNet(x *channel, m *wire.Msg, call bool, id uint64, g backbone.Group) {
	n := ch.srv.bb.Load()
	if n == nil {
		ch.stats.queueLost.Add(1)
		return
	}
	var frame []byte
	if call {
		frame = wire.AppendCall(nil, id, m)
	} else {
		frame = wire.AppendMsg(nil, m)
	}
	// Not to be picked again here: the queue subscription goes first
	// (a no-op once gone), and the interest is computed again in case
	// a member joined meanwhile.
	n.b.LeaveGroup(g)
	n.kickInterest()
	if n.b.Requeue(x.name, m.Event, g, frame) != nil {
		ch.stats.queueLost.Add(1)
		return
	}
	ch.stats.redispatched.Add(1)
}

// requeueLeft is redispatch's way out for a QueueMsg body (type byte and
// payload) of group k of ch when ch has no member of k left: if the group
// is NATS-wide for the message, it goes back to NATS for another server
// (true); false leaves it lost. A message is NATS-wide if its channel
// here gives its groups to NATS and it came from NATS: emitted here on a
// channel that propagates to NATS, or from another server while this one
// has no UDP network (whose messages have per-server groups).
func (ch *channel) requeueLeft(body []byte, k qgroup.Key) bool {
	s := ch.srv
	n := s.bb.Load()
	if n == nil || len(body) < 1 {
		return false
	}
	var v wire.MsgView
	var id uint64
	var err error
	call := body[0] == wire.TypeCall
	if call {
		id, v, err = wire.ParseCall(body[1:])
	} else {
		v, err = wire.ParseMsg(body[1:])
	}
	if err != nil {
		return false
	}
	x := (*n.chans.Load())[string(v.Channel)]
	if x == nil {
		return false
	}
	st := x.settings.Load()
	if !s.natsGroups(st) || len(v.Node) == 0 && !st.PropagateToNet || len(v.Node) != 0 && s.net.Load() != nil {
		return false
	}
	m := wire.Msg{Flags: v.Flags, Channel: x.name, Agent: string(v.Agent), Node: string(v.Node), Event: string(v.Event), Data: v.Data}
	if m.Node == "" {
		m.Node = s.nodeID
	}
	ch.requeueNet(x, &m, call, id, backbone.Group{Channel: ch.name, Name: k.Name, Pattern: k.Pattern})
	return true
}

// propagatesTo reports whether ch's messages go to t.
func (ch *channel) propagatesTo(t *channel) bool {
	st := ch.settings.Load()
	if st == nil {
		return false
	}
	for _, x := range st.targets {
		if x == t {
			return true
		}
	}
	return false
}

// routeGroup gives d to one member of ch's group k, if its pattern
// matches d's event. It returns the member if its outbox is now nearly
// full, and taken false if the group has no member left to take it.
func (ch *channel) routeGroup(d *delivery, k qgroup.Key) (full *conn, taken bool) {
	for _, g := range ch.queues.Match(d.v.Event) {
		if g.Key != k {
			continue
		}
		body := d.raw[wire.LenSize:]
		var nearly bool
		m, ok := g.Pick((*conn).hasRoom, func(m qgroup.Member[*conn]) bool {
			var ok bool
			ok, nearly = m.S.deliverQueued(m.SID, body, false)
			return ok
		})
		if ok && nearly {
			full = m.S
		}
		return full, ok
	}
	// The group's pattern does not match (its subject is wider than the
	// pattern: the message is not the group's), or no member is left.
	return nil, ch.queues.Group(k) != nil
}
