package server

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
	out.Memory, out.MemoryLimit, out.Evicted = st.Memory, st.MemoryLimit, st.Evicted
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
