package server

import (
	"time"
)

// NetStats describes the network side of a server (Stats.Network).
type NetStats struct {
	Node   string `json:"node"`   // this server's node id (Server.NodeID)
	Name   string `json:"name"`   // its node name
	Addr   string `json:"addr"`   // the unicast address peers reply to
	Group  string `json:"group"`  // "group:port", or "peers [...]" in unicast mode
	Sealed bool   `json:"sealed"` // traffic is encrypted (keys configured)

	Sent           uint64 `json:"sent"`            // messages handed to the network
	SendDropped    uint64 `json:"send_dropped"`    // messages not sent: send queue full too long, too large, network closing
	Received       uint64 `json:"received"`        // messages received from other nodes
	Routed         uint64 `json:"routed"`          // of which routed to a local channel
	UnknownChannel uint64 `json:"unknown_channel"` // dropped: no such channel here
	Refused        uint64 `json:"refused"`         // dropped: the channel has acceptnet false
	Malformed      uint64 `json:"malformed"`       // dropped: not a valid message frame

	Datagrams   uint64 `json:"datagrams"`    // data datagrams sent (first transmissions)
	Bytes       uint64 `json:"bytes"`        // their bytes
	Retransmits uint64 `json:"retransmits"`  // datagrams sent again after a NAK
	NaksIn      uint64 `json:"naks_in"`      // NAKs received for this node
	Unavailable uint64 `json:"unavailable"`  // NAKed sequences no longer held
	QueueFull   uint64 `json:"queue_full"`   // messages that found the send queue full (then waited up to 2 s), once each
	WriteErrors uint64 `json:"write_errors"` // socket write errors
	Echoes      uint64 `json:"echoes"`       // own datagrams heard back, ignored

	// Rejected counts refused datagrams by reason: "auth" (forged,
	// tampered or wrong key), "unknown-key", "plaintext", "no-keys",
	// "replay", "duplicate", "truncated", "malformed", … Only non-zero
	// reasons appear.
	Rejected map[string]uint64 `json:"rejected"`
	Peers    []NetPeerStats    `json:"peers"` // sorted by node id
}

// NetPeerStats describes another node as this server sees it.
type NetPeerStats struct {
	Node          string    `json:"node"`
	Name          string    `json:"name"`
	Addr          string    `json:"addr"`
	LastSeen      time.Time `json:"last_seen"`
	NextSeq       uint64    `json:"next_seq"`       // next datagram sequence to deliver
	HighestSeq    uint64    `json:"highest_seq"`    // highest sequence received or announced
	Delivered     uint64    `json:"delivered"`      // messages delivered from it
	Datagrams     uint64    `json:"datagrams"`      // its data datagrams accepted
	Reordered     uint64    `json:"reordered"`      // gaps filled before a NAK
	Recovered     uint64    `json:"recovered"`      // gaps filled by a retransmission
	LostDatagrams uint64    `json:"lost_datagrams"` // sequences given up
	LostMessages  uint64    `json:"lost_messages"`  // messages never delivered (unrecovered loss)
	Duplicates    uint64    `json:"duplicates"`
	NaksSent      uint64    `json:"naks_sent"`
	Restarts      uint64    `json:"restarts"` // new sessions seen (restarts, rebinds)
}

// netStats returns the network figures, nil without the network.
func (s *Server) netStats() *NetStats {
	n := s.net.Load()
	if n == nil {
		return nil
	}
	out := &NetStats{
		Node:           s.nodeID,
		Sent:           n.st.sent.Load(),
		SendDropped:    n.st.sendDropped.Load(),
		Received:       n.st.received.Load(),
		Routed:         n.st.routed.Load(),
		UnknownChannel: n.st.unknownChannel.Load(),
		Refused:        n.st.refused.Load(),
		Malformed:      n.st.malformed.Load(),
		Rejected:       map[string]uint64{},
		Peers:          []NetPeerStats{},
	}
	n.bmu.Lock()
	b := n.bus.Load()
	out.Group = groupOf(n.bcfg)
	out.Sealed = len(n.keys) > 0
	n.bmu.Unlock()
	if b == nil {
		return out
	}
	st := b.Stats()
	out.Name, out.Addr = st.Name, st.Addr.String()
	out.Datagrams, out.Bytes = st.Sent.Datagrams, st.Sent.Bytes
	out.Retransmits, out.NaksIn, out.Unavailable = st.Sent.Retransmits, st.Sent.NaksReceived, st.Sent.Unavailable
	out.QueueFull, out.WriteErrors, out.Echoes = st.Sent.QueueFull, st.Sent.WriteErrors, st.Echoes
	for r, c := range st.Rejected {
		out.Rejected[r.String()] = c
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, NetPeerStats{
			Node: p.ID.String(), Name: p.Name, Addr: p.Addr.String(), LastSeen: p.LastSeen,
			NextSeq: p.NextSeq, HighestSeq: p.HighestSeq, Delivered: p.Delivered, Datagrams: p.Datagrams,
			Reordered: p.Reordered, Recovered: p.Recovered, LostDatagrams: p.LostDatagrams,
			LostMessages: p.LostMessages, Duplicates: p.Duplicates, NaksSent: p.NaksSent, Restarts: p.Restarts,
		})
	}
	return out
}
