package server

// Requests and answers over the network (multicast or unicast peers): a
// Call is sent and delivered like a Msg, with the origin node written in;
// an Answer is sent to every node and delivered by the one it names.

import (
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// deliverCallFrame is deliver for a Call or an Answer from another node.
func (n *netNode) deliverCallFrame(from netbus.Peer, channel string, f wire.Frame) {
	if from.ID != n.last || n.name == "" {
		n.last, n.name = from.ID, from.ID.String()
	}
	if f.Type == wire.TypeAnswer {
		n.deliverNetAnswer(channel, f)
		return
	}
	id, v, err := wire.ParseCall(f.Payload)
	if err != nil || len(v.Event) == 0 || string(v.Channel) != channel || len(v.Node) != 0 {
		n.st.malformed.Add(1)
		n.warnSoon()
		return
	}
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: channel,
		Agent:   unsafeString(v.Agent),
		Node:    n.name,
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	ch := (*n.chans.Load())[channel]
	verdict := n.srv.netVerdict(ch, wire.CallSize(&m), &n.st.unknownChannel, &n.st.refused)
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(n.name, from, channel, &v, verdict)
	}
	if verdict != "" {
		n.warnSoon()
		return
	}
	out := wire.AppendCall(make([]byte, 0, wire.CallSize(&m)), id, &m)
	g, _, _ := wire.Split(out)
	_, nv, _ := wire.ParseCall(g.Payload)
	n.st.routed.Add(1)
	ch.stats.requests.Add(1)
	d := delivery{raw: out, v: &nv, call: true, id: id}
	ch.routeDelivery(nil, &d)
}

// deliverNetAnswer delivers an Answer from another node if it is for an
// agent of this one, with the answering node written in its origin.
func (n *netNode) deliverNetAnswer(channel string, f wire.Frame) {
	id, to, v, err := wire.ParseAnswer(f.Payload)
	if err != nil || string(to.Channel) != channel || len(v.Node) != 0 {
		n.st.malformed.Add(1)
		n.warnSoon()
		return
	}
	if string(to.Node) != n.srv.nodeID {
		return // for another node: every node gets every datagram
	}
	addr := wire.Addr{Channel: channel, Agent: unsafeString(to.Agent)} // local now: node empty
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Node:    n.name,
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	out := wire.AppendAnswer(make([]byte, 0, wire.AnswerSize(&addr, &m)), id, &addr, &m)
	g, _, _ := wire.Split(out)
	_, lto, _, _ := wire.ParseAnswer(g.Payload)
	n.st.routed.Add(1)
	if !n.srv.deliverAnswer(out, &lto, false) {
		if ch := (*n.chans.Load())[channel]; ch != nil {
			ch.stats.repliesDropped.Add(1)
		}
	}
}

// sendNetAnswer sends an Answer for an agent of another node to the
// network; false if this server is not on it.
func (s *Server) sendNetAnswer(raw []byte, to *wire.AddrView) bool {
	n := s.net.Load()
	if n == nil {
		return false
	}
	n.send(string(to.Channel), raw)
	return true
}
