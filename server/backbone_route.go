package server

import (
	"encoding/hex"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// sendBackbone publishes a message emitted by a local agent on ch. The
// backbone counts what it could not publish.
func (s *Server) sendBackbone(ch *channel, v *wire.MsgView, raw []byte) {
	if n := s.bb.Load(); n != nil {
		n.b.Send(ch.name, unsafeString(v.Event), raw)
	}
}

// deliver is the backbone's DeliverFunc: it routes a message from another
// server to the local channel it was emitted on, with the origin node in
// its Node field, as netNode.deliver does for the UDP network. Called
// from several goroutines.
func (n *bbNode) deliver(node backbone.NodeID, frame []byte) {
	n.st.received.Add(1)
	if f, rest, ok := wire.Split(frame); ok && len(rest) == 0 && (f.Type == wire.TypeCall || f.Type == wire.TypeAnswer) {
		n.deliverCallFrame(node, f)
		return
	}
	v, ok := parseNetMsg(frame)
	if !ok {
		n.st.malformed.Add(1)
		return
	}
	var name [16]byte
	hex.Encode(name[:], node[:])
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Node:    string(name[:]),
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	ch := (*n.chans.Load())[m.Channel]
	verdict := n.srv.netVerdict(ch, wire.MsgSize(&m), &n.st.unknownChannel, &n.st.refused)
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(m.Node, netbus.Peer{ID: netbus.NodeID(node), Name: "nats"}, m.Channel, &v, verdict)
	}
	if verdict != "" {
		return
	}
	out := wire.AppendMsg(make([]byte, 0, wire.MsgSize(&m)), &m)
	f, _, _ := wire.Split(out)
	nv, _ := wire.ParseMsg(f.Payload)
	n.st.routed.Add(1)
	ch.route(nil, out, &nv)
}

// backboneStats returns the backbone's figures, nil without one.
func (s *Server) backboneStats() *BackboneStats {
	n := s.bb.Load()
	if n == nil {
		return nil
	}
	st := n.b.Stats()
	out := &BackboneStats{
		State: st.State, URL: st.URL, LastError: st.LastError, Reconnects: st.Reconnects,
		MsgsOut: st.MsgsOut, BytesOut: st.BytesOut, MsgsIn: st.MsgsIn, BytesIn: st.BytesIn,
		Buffered: st.Buffered, Dropped: st.Dropped, Lost: st.Lost + st.TooLarge, Duplicates: st.Duplicates,
		Malformed: st.Malformed + n.st.malformed.Load(), Routed: n.st.routed.Load(),
		Unknown: n.st.unknownChannel.Load(), Refused: n.st.refused.Load(),
		Subjects: st.Subjects, Durable: st.Durable,
	}
	if out.Subjects == nil {
		out.Subjects = []string{}
	}
	if out.Durable == nil {
		out.Durable = []string{}
	}
	return out
}
