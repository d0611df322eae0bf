package server

// Requests and answers over the NATS backbone: a Call is published like a
// Msg, on its channel's subject, and routed with its origin node written
// in; an Answer for an agent of another server is published on that
// server's answer subject (channel bbAnswers, "event" its node id), to
// which every server subscribes for itself.

import (
	"encoding/hex"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// bbAnswers is the backbone "channel" of answers. It is not a valid
// channel name, so no configured channel shares its subjects.
const bbAnswers = "~answers"

// deliverCallFrame is deliver for a Call or an Answer from another server.
func (n *bbNode) deliverCallFrame(node backbone.NodeID, f wire.Frame) {
	var name [16]byte
	hex.Encode(name[:], node[:])
	if f.Type == wire.TypeAnswer {
		n.deliverAnswer(string(name[:]), f)
		return
	}
	id, v, err := wire.ParseCall(f.Payload)
	if err != nil || len(v.Event) == 0 || len(v.Node) != 0 {
		n.st.malformed.Add(1)
		return
	}
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Node:    string(name[:]),
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	ch := (*n.chans.Load())[m.Channel]
	verdict := n.srv.netVerdict(ch, wire.CallSize(&m), &n.st.unknownChannel, &n.st.refused)
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(m.Node, netbus.Peer{ID: netbus.NodeID(node), Name: "nats"}, m.Channel, &v, verdict)
	}
	if verdict != "" {
		return
	}
	out := wire.AppendCall(make([]byte, 0, wire.CallSize(&m)), id, &m)
	g, _, _ := wire.Split(out)
	_, nv, _ := wire.ParseCall(g.Payload)
	n.st.routed.Add(1)
	ch.stats.requests.Add(1)
	d := delivery{raw: out, v: &nv, call: true, id: id, netGroups: n.srv.natsGroups(ch.settings.Load())}
	ch.routeDelivery(nil, &d)
}

// deliverAnswer delivers an Answer from server from to the local agent it
// is addressed to, with from written in the answer's origin.
func (n *bbNode) deliverAnswer(from string, f wire.Frame) {
	id, to, v, err := wire.ParseAnswer(f.Payload)
	if err != nil || len(v.Node) != 0 {
		n.st.malformed.Add(1)
		return
	}
	if string(to.Node) != n.srv.nodeID {
		return // not ours (a subject shared by mistake): ignore
	}
	addr := wire.Addr{Channel: unsafeString(to.Channel), Agent: unsafeString(to.Agent)}
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Node:    from,
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	out := wire.AppendAnswer(make([]byte, 0, wire.AnswerSize(&addr, &m)), id, &addr, &m)
	g, _, _ := wire.Split(out)
	_, lto, _, _ := wire.ParseAnswer(g.Payload)
	n.st.routed.Add(1)
	if !n.srv.deliverAnswer(out, &lto, false) {
		if ch := (*n.chans.Load())[addr.Channel]; ch != nil {
			ch.stats.repliesDropped.Add(1)
		}
	}
}

// sendBackboneAnswer publishes an Answer for an agent of another server on
// that server's answer subject; false without a backbone.
func (s *Server) sendBackboneAnswer(raw []byte, to *wire.AddrView) bool {
	n := s.bb.Load()
	if n == nil {
		return false
	}
	n.b.Send(bbAnswers, string(to.Node), raw)
	return true
}

// probeBackbone asks NATS whether any other server subscribes to the
// subject of the Call d, which found no local agent able to answer: if
// none does, the requester src gets NoResponders at once. (A Call that
// also went to multicast or peers waits for its context: who listens
// there cannot be known.)
func (s *Server) probeBackbone(ch *channel, src *conn, d *delivery) {
	n := s.bb.Load()
	if n == nil || src == nil {
		return
	}
	id := d.id
	n.b.Probe(ch.name, string(d.v.Event), func() {
		ch.stats.noResponders.Add(1)
		src.sendControl(wire.AppendU64(nil, wire.TypeNoResponders, id))
	})
}
