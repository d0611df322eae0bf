package metrics

import "github.com/netcluster/netcluster/server"

// statsDescs are the server's families, read from one Server.Stats at
// scrape time.
type statsDescs struct {
	info, start, agents                      *desc
	msgsIn, bytesIn, msgsOut, bytesOut, drop *desc
	slow, refused, framesRefused             *desc
	// Requests and queue groups (issue 12).
	requests, replies, repliesDropped, noResponders *desc
	queueMsgs, redispatched, queueLost              *desc
	// Gaps after a crash (protocol version 4).
	streamEnds, streamEndsDropped, watchesEarly *desc
	// Rates the server computes each second (see server.Stats).
	rateMsgsIn, rateBytesIn, rateMsgsOut, rateBytesOut, rateDrop, peerRateDelivered *desc

	// The network side, collected only with connecttonet.
	netSent, netSendDropped, netReceived, netRejected *desc
	netRetransmits, peerDelivered, peerRecovered      *desc
	peerLostDatagrams, peerLostMessages, peerLastSeen *desc
	netMemory, netMemoryLimit, netEvicted             *desc

	// The NATS backbone, collected only when it runs.
	bbConnected, bbReconnects, bbMsgsOut, bbBytesOut, bbMsgsIn *desc
	bbBytesIn, bbBuffered, bbDropped, bbLost                   *desc
	bbQueueIn, bbRequeued                                      *desc
}

var sd = statsDescs{
	info:          newDesc("netcluster_server_info", "The server's node id, as a label; always 1.", gauge, "node_id"),
	start:         newDesc("netcluster_server_start_time_seconds", "When the server started, in seconds since the Unix epoch.", gauge),
	agents:        newDesc("netcluster_agents", "Agents connected to the channel.", gauge, "channel"),
	msgsIn:        newDesc("netcluster_messages_received_total", "Messages emitted by the channel's agents.", counter, "channel"),
	bytesIn:       newDesc("netcluster_received_bytes_total", "Data bytes of the messages emitted by the channel's agents.", counter, "channel"),
	msgsOut:       newDesc("netcluster_messages_delivered_total", "Messages queued for delivery to the channel's agents.", counter, "channel"),
	bytesOut:      newDesc("netcluster_delivered_bytes_total", "Frame bytes of the messages queued for the channel's agents.", counter, "channel"),
	drop:          newDesc("netcluster_messages_dropped_total", "Messages dropped for the channel's agents because they read too slowly.", counter, "channel"),
	slow:          newDesc("netcluster_slow_consumers_disconnected_total", "Agents of the channel disconnected as slow consumers.", counter, "channel"),
	refused:       newDesc("netcluster_connections_refused_total", "Connections to the channel refused by a connection limit.", counter, "channel"),
	framesRefused: newDesc("netcluster_frames_refused_total", "Agents of the channel disconnected for a frame past partialframes or its deadline.", counter, "channel"),

	requests:       newDesc("netcluster_requests_total", "Requests emitted on the channel, by its agents or arriving from the network.", counter, "channel"),
	replies:        newDesc("netcluster_replies_total", "Answers the channel's agents sent.", counter, "channel"),
	repliesDropped: newDesc("netcluster_replies_dropped_total", "Answers of the channel's agents dropped because the requester was gone.", counter, "channel"),
	noResponders:   newDesc("netcluster_no_responders_total", "Requests on the channel told at once that no one can answer.", counter, "channel"),
	queueMsgs:      newDesc("netcluster_queue_messages_total", "Messages given to the channel's queue group members, redispatches included.", counter, "channel"),
	redispatched:   newDesc("netcluster_queue_redispatched_total", "Queue group messages given to another member after theirs left.", counter, "channel"),
	queueLost:      newDesc("netcluster_queue_lost_total", "Queue group messages no member could take.", counter, "channel"),

	streamEnds:        newDesc("netcluster_stream_ends_total", "StreamEnd notices queued for the channel's agents: a sender's connection ended.", counter, "channel"),
	streamEndsDropped: newDesc("netcluster_stream_ends_dropped_total", "StreamEnd notices not sent: the agent's outbox was full, or the sender's uid had used up its budget.", counter, "channel"),
	watchesEarly:      newDesc("netcluster_watches_early_total", "Watch entries answered before the restart grace ended: the server held too many.", counter, "channel"),

	rateMsgsIn:        newDesc("netcluster_messages_received_per_second", "Messages emitted by the channel's agents per second, over the server's last one-second sample.", gauge, "channel"),
	rateBytesIn:       newDesc("netcluster_received_bytes_per_second", "Data bytes emitted by the channel's agents per second, over the last sample.", gauge, "channel"),
	rateMsgsOut:       newDesc("netcluster_messages_delivered_per_second", "Messages queued for the channel's agents per second, over the last sample.", gauge, "channel"),
	rateBytesOut:      newDesc("netcluster_delivered_bytes_per_second", "Frame bytes queued for the channel's agents per second, over the last sample.", gauge, "channel"),
	rateDrop:          newDesc("netcluster_messages_dropped_per_second", "Messages dropped for the channel's slow agents per second, over the last sample.", gauge, "channel"),
	peerRateDelivered: newDesc("netcluster_net_peer_messages_delivered_per_second", "Messages delivered from the peer per second, over the last sample.", gauge, "peer", "name"),

	netSent:           newDesc("netcluster_net_messages_sent_total", "Messages handed to the network.", counter),
	netSendDropped:    newDesc("netcluster_net_messages_not_sent_total", "Messages not sent: send queue full too long, too large, or the network closing.", counter),
	netReceived:       newDesc("netcluster_net_messages_received_total", "Messages received from other nodes.", counter),
	netRejected:       newDesc("netcluster_net_datagrams_rejected_total", "Datagrams refused, by reason.", counter, "reason"),
	netRetransmits:    newDesc("netcluster_net_retransmits_total", "Datagrams sent again after a NAK.", counter),
	peerDelivered:     newDesc("netcluster_net_peer_messages_delivered_total", "Messages delivered from the peer.", counter, "peer", "name"),
	peerRecovered:     newDesc("netcluster_net_peer_datagrams_recovered_total", "Gaps in the peer's stream filled by a retransmission.", counter, "peer", "name"),
	peerLostDatagrams: newDesc("netcluster_net_peer_datagrams_lost_total", "Sequences of the peer given up (unrecovered).", counter, "peer", "name"),
	peerLostMessages:  newDesc("netcluster_net_peer_messages_lost_total", "Messages of the peer never delivered.", counter, "peer", "name"),
	peerLastSeen:      newDesc("netcluster_net_peer_last_seen_seconds", "When a datagram of the peer was last accepted, in seconds since the Unix epoch.", gauge, "peer", "name"),
	netMemory:         newDesc("netcluster_net_memory_bytes", "Bytes other nodes make this one hold (peers, gaps, out-of-order datagrams, partial messages).", gauge),
	netMemoryLimit:    newDesc("netcluster_net_memory_limit_bytes", "The bound on netcluster_net_memory_bytes (netmemory).", gauge),
	netEvicted:        newDesc("netcluster_net_peers_evicted_total", "Peers whose state was dropped to make room for one that delivered more.", counter),

	bbConnected:  newDesc("netcluster_nats_connected", "1 while the NATS backbone is connected, with the server's URL as a label; 0 otherwise.", gauge, "url"),
	bbReconnects: newDesc("netcluster_nats_reconnects_total", "Reconnections of the NATS backbone.", counter),
	bbMsgsOut:    newDesc("netcluster_nats_messages_sent_total", "Messages published on NATS (or stored in JetStream for durable channels).", counter),
	bbBytesOut:   newDesc("netcluster_nats_sent_bytes_total", "Frame bytes of the messages published on NATS.", counter),
	bbMsgsIn:     newDesc("netcluster_nats_messages_received_total", "Messages received from other servers over NATS.", counter),
	bbBytesIn:    newDesc("netcluster_nats_received_bytes_total", "Frame bytes of the messages received over NATS.", counter),
	bbBuffered:   newDesc("netcluster_nats_buffered_bytes", "Bytes held while NATS is unreachable or slow.", gauge),
	bbDropped:    newDesc("netcluster_nats_messages_dropped_total", "Messages not published: outbound buffer full, too large, or closing.", counter),
	bbLost:       newDesc("netcluster_nats_messages_lost_total", "Other servers' messages known lost (sequence gaps).", counter),
	bbQueueIn:    newDesc("netcluster_nats_queue_messages_received_total", "Of the messages received over NATS, those NATS picked this server for, for a queue group.", counter),
	bbRequeued:   newDesc("netcluster_nats_queue_messages_requeued_total", "Queue group messages published again for another server's member, after this server's last member left.", counter),
}

// addStats adds the families of st. A channel removed by a reload
// disappears; one added starts from zero.
func addStats(e *exposition, st server.Stats) {
	e.add(sd.info, 1, st.NodeID)
	if !st.Started.IsZero() {
		e.add(sd.start, float64(st.Started.UnixNano())/1e9)
	}
	counter := func(d *desc, v uint64, labels ...string) { e.add(d, float64(v), labels...) }
	for _, ch := range st.Channels {
		e.add(sd.agents, float64(len(ch.Agents)), ch.Name)
		counter(sd.msgsIn, ch.MsgsIn, ch.Name)
		counter(sd.bytesIn, ch.BytesIn, ch.Name)
		counter(sd.msgsOut, ch.MsgsOut, ch.Name)
		counter(sd.bytesOut, ch.BytesOut, ch.Name)
		counter(sd.drop, ch.Dropped, ch.Name)
		counter(sd.slow, ch.Slow, ch.Name)
		counter(sd.refused, ch.Refused, ch.Name)
		counter(sd.framesRefused, ch.FramesRefused, ch.Name)
		counter(sd.requests, ch.Requests, ch.Name)
		counter(sd.replies, ch.Replies, ch.Name)
		counter(sd.repliesDropped, ch.RepliesDropped, ch.Name)
		counter(sd.noResponders, ch.NoResponders, ch.Name)
		counter(sd.queueMsgs, ch.QueueMsgs, ch.Name)
		counter(sd.redispatched, ch.Redispatched, ch.Name)
		counter(sd.queueLost, ch.QueueLost, ch.Name)
		counter(sd.streamEnds, ch.StreamEnds, ch.Name)
		counter(sd.streamEndsDropped, ch.StreamEndsDropped, ch.Name)
		counter(sd.watchesEarly, ch.WatchesEarly, ch.Name)
		if r := ch.Rates; r != nil {
			e.add(sd.rateMsgsIn, r.MsgsIn, ch.Name)
			e.add(sd.rateBytesIn, r.BytesIn, ch.Name)
			e.add(sd.rateMsgsOut, r.MsgsOut, ch.Name)
			e.add(sd.rateBytesOut, r.BytesOut, ch.Name)
			e.add(sd.rateDrop, r.Dropped, ch.Name)
		}
	}
	if n := st.Network; n != nil {
		counter(sd.netSent, n.Sent)
		counter(sd.netSendDropped, n.SendDropped)
		counter(sd.netReceived, n.Received)
		counter(sd.netRetransmits, n.Retransmits)
		e.add(sd.netMemory, float64(n.Memory))
		e.add(sd.netMemoryLimit, float64(n.MemoryLimit))
		counter(sd.netEvicted, n.Evicted)
		for reason, v := range n.Rejected {
			counter(sd.netRejected, v, reason)
		}
		for _, p := range n.Peers {
			counter(sd.peerDelivered, p.Delivered, p.Node, p.Name)
			counter(sd.peerRecovered, p.Recovered, p.Node, p.Name)
			counter(sd.peerLostDatagrams, p.LostDatagrams, p.Node, p.Name)
			counter(sd.peerLostMessages, p.LostMessages, p.Node, p.Name)
			if p.Rates != nil {
				e.add(sd.peerRateDelivered, p.Rates.Delivered, p.Node, p.Name)
			}
			if !p.LastSeen.IsZero() {
				e.add(sd.peerLastSeen, float64(p.LastSeen.UnixNano())/1e9, p.Node, p.Name)
			}
		}
	}
	if b := st.Backbone; b != nil {
		up := 0.0
		if b.State == "connected" {
			up = 1
		}
		e.add(sd.bbConnected, up, b.URL)
		counter(sd.bbReconnects, b.Reconnects)
		counter(sd.bbMsgsOut, b.MsgsOut)
		counter(sd.bbBytesOut, b.BytesOut)
		counter(sd.bbMsgsIn, b.MsgsIn)
		counter(sd.bbBytesIn, b.BytesIn)
		e.add(sd.bbBuffered, float64(b.Buffered))
		counter(sd.bbDropped, b.Dropped)
		counter(sd.bbLost, b.Lost)
		counter(sd.bbQueueIn, b.QueueIn)
		counter(sd.bbRequeued, b.Requeued)
	}
}
