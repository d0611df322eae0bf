package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netcluster/netcluster/server"
)

// statsCollector reads the server's counters at scrape time.
type statsCollector struct {
	s *server.Server

	info, start, agents                      *prometheus.Desc
	msgsIn, bytesIn, msgsOut, bytesOut, drop *prometheus.Desc
	slow, refused, framesRefused             *prometheus.Desc
	// Requests and queue groups (issue 12).
	requests, replies, repliesDropped, noResponders *prometheus.Desc
	queueMsgs, redispatched, queueLost              *prometheus.Desc
	// Gaps after a crash (protocol version 4).
	streamEnds, streamEndsDropped, watchesEarly *prometheus.Desc
	// Rates the server computes each second (see server.Stats).
	rateMsgsIn, rateBytesIn, rateMsgsOut, rateBytesOut, rateDrop, peerRateDelivered *prometheus.Desc

	// The network side, collected only with connecttonet.
	netSent, netSendDropped, netReceived, netRejected *prometheus.Desc
	netRetransmits, peerDelivered, peerRecovered      *prometheus.Desc
	peerLostDatagrams, peerLostMessages, peerLastSeen *prometheus.Desc
	netMemory, netMemoryLimit, netEvicted             *prometheus.Desc

	// The NATS backbone, collected only when it runs.
	bbConnected, bbReconnects, bbMsgsOut, bbBytesOut, bbMsgsIn *prometheus.Desc
	bbBytesIn, bbBuffered, bbDropped, bbLost                   *prometheus.Desc
	bbQueueIn, bbRequeued                                      *prometheus.Desc
}

var _ prometheus.Collector = (*statsCollector)(nil)

func newStatsCollector(s *server.Server) *statsCollector {
	ch := []string{"channel"}
	peer := []string{"peer", "name"}
	return &statsCollector{
		s:             s,
		info:          prometheus.NewDesc("netcluster_server_info", "The server's node id, as a label; always 1.", []string{"node_id"}, nil),
		start:         prometheus.NewDesc("netcluster_server_start_time_seconds", "When the server started, in seconds since the Unix epoch.", nil, nil),
		agents:        prometheus.NewDesc("netcluster_agents", "Agents connected to the channel.", ch, nil),
		msgsIn:        prometheus.NewDesc("netcluster_messages_received_total", "Messages emitted by the channel's agents.", ch, nil),
		bytesIn:       prometheus.NewDesc("netcluster_received_bytes_total", "Data bytes of the messages emitted by the channel's agents.", ch, nil),
		msgsOut:       prometheus.NewDesc("netcluster_messages_delivered_total", "Messages queued for delivery to the channel's agents.", ch, nil),
		bytesOut:      prometheus.NewDesc("netcluster_delivered_bytes_total", "Frame bytes of the messages queued for the channel's agents.", ch, nil),
		drop:          prometheus.NewDesc("netcluster_messages_dropped_total", "Messages dropped for the channel's agents because they read too slowly.", ch, nil),
		slow:          prometheus.NewDesc("netcluster_slow_consumers_disconnected_total", "Agents of the channel disconnected as slow consumers.", ch, nil),
		refused:       prometheus.NewDesc("netcluster_connections_refused_total", "Connections to the channel refused by a connection limit.", ch, nil),
		framesRefused: prometheus.NewDesc("netcluster_frames_refused_total", "Agents of the channel disconnected for a frame past partialframes or its deadline.", ch, nil),

		requests:       prometheus.NewDesc("netcluster_requests_total", "Requests emitted on the channel, by its agents or arriving from the network.", ch, nil),
		replies:        prometheus.NewDesc("netcluster_replies_total", "Answers the channel's agents sent.", ch, nil),
		repliesDropped: prometheus.NewDesc("netcluster_replies_dropped_total", "Answers of the channel's agents dropped because the requester was gone.", ch, nil),
		noResponders:   prometheus.NewDesc("netcluster_no_responders_total", "Requests on the channel told at once that no one can answer.", ch, nil),
		queueMsgs:      prometheus.NewDesc("netcluster_queue_messages_total", "Messages given to the channel's queue group members, redispatches included.", ch, nil),
		redispatched:   prometheus.NewDesc("netcluster_queue_redispatched_total", "Queue group messages given to another member after theirs left.", ch, nil),
		queueLost:      prometheus.NewDesc("netcluster_queue_lost_total", "Queue group messages no member could take.", ch, nil),

		streamEnds:        prometheus.NewDesc("netcluster_stream_ends_total", "StreamEnd notices queued for the channel's agents: a sender's connection ended.", ch, nil),
		streamEndsDropped: prometheus.NewDesc("netcluster_stream_ends_dropped_total", "StreamEnd notices not sent: the agent's outbox was full, or the sender's uid had used up its budget.", ch, nil),
		watchesEarly:      prometheus.NewDesc("netcluster_watches_early_total", "Watch entries answered before the restart grace ended: the server held too many.", ch, nil),

		rateMsgsIn:        prometheus.NewDesc("netcluster_messages_received_per_second", "Messages emitted by the channel's agents per second, over the server's last one-second sample.", ch, nil),
		rateBytesIn:       prometheus.NewDesc("netcluster_received_bytes_per_second", "Data bytes emitted by the channel's agents per second, over the last sample.", ch, nil),
		rateMsgsOut:       prometheus.NewDesc("netcluster_messages_delivered_per_second", "Messages queued for the channel's agents per second, over the last sample.", ch, nil),
		rateBytesOut:      prometheus.NewDesc("netcluster_delivered_bytes_per_second", "Frame bytes queued for the channel's agents per second, over the last sample.", ch, nil),
		rateDrop:          prometheus.NewDesc("netcluster_messages_dropped_per_second", "Messages dropped for the channel's slow agents per second, over the last sample.", ch, nil),
		peerRateDelivered: prometheus.NewDesc("netcluster_net_peer_messages_delivered_per_second", "Messages delivered from the peer per second, over the last sample.", peer, nil),

		netSent:           prometheus.NewDesc("netcluster_net_messages_sent_total", "Messages handed to the network.", nil, nil),
		netSendDropped:    prometheus.NewDesc("netcluster_net_messages_not_sent_total", "Messages not sent: send queue full too long, too large, or the network closing.", nil, nil),
		netReceived:       prometheus.NewDesc("netcluster_net_messages_received_total", "Messages received from other nodes.", nil, nil),
		netRejected:       prometheus.NewDesc("netcluster_net_datagrams_rejected_total", "Datagrams refused, by reason.", []string{"reason"}, nil),
		netRetransmits:    prometheus.NewDesc("netcluster_net_retransmits_total", "Datagrams sent again after a NAK.", nil, nil),
		peerDelivered:     prometheus.NewDesc("netcluster_net_peer_messages_delivered_total", "Messages delivered from the peer.", peer, nil),
		peerRecovered:     prometheus.NewDesc("netcluster_net_peer_datagrams_recovered_total", "Gaps in the peer's stream filled by a retransmission.", peer, nil),
		peerLostDatagrams: prometheus.NewDesc("netcluster_net_peer_datagrams_lost_total", "Sequences of the peer given up (unrecovered).", peer, nil),
		peerLostMessages:  prometheus.NewDesc("netcluster_net_peer_messages_lost_total", "Messages of the peer never delivered.", peer, nil),
		peerLastSeen:      prometheus.NewDesc("netcluster_net_peer_last_seen_seconds", "When a datagram of the peer was last accepted, in seconds since the Unix epoch.", peer, nil),
		netMemory:         prometheus.NewDesc("netcluster_net_memory_bytes", "Bytes other nodes make this one hold (peers, gaps, out-of-order datagrams, partial messages).", nil, nil),
		netMemoryLimit:    prometheus.NewDesc("netcluster_net_memory_limit_bytes", "The bound on netcluster_net_memory_bytes (netmemory).", nil, nil),
		netEvicted:        prometheus.NewDesc("netcluster_net_peers_evicted_total", "Peers whose state was dropped to make room for one that delivered more.", nil, nil),

		bbConnected:  prometheus.NewDesc("netcluster_nats_connected", "1 while the NATS backbone is connected, with the server's URL as a label; 0 otherwise.", []string{"url"}, nil),
		bbReconnects: prometheus.NewDesc("netcluster_nats_reconnects_total", "Reconnections of the NATS backbone.", nil, nil),
		bbMsgsOut:    prometheus.NewDesc("netcluster_nats_messages_sent_total", "Messages published on NATS (or stored in JetStream for durable channels).", nil, nil),
		bbBytesOut:   prometheus.NewDesc("netcluster_nats_sent_bytes_total", "Frame bytes of the messages published on NATS.", nil, nil),
		bbMsgsIn:     prometheus.NewDesc("netcluster_nats_messages_received_total", "Messages received from other servers over NATS.", nil, nil),
		bbBytesIn:    prometheus.NewDesc("netcluster_nats_received_bytes_total", "Frame bytes of the messages received over NATS.", nil, nil),
		bbBuffered:   prometheus.NewDesc("netcluster_nats_buffered_bytes", "Bytes held while NATS is unreachable or slow.", nil, nil),
		bbDropped:    prometheus.NewDesc("netcluster_nats_messages_dropped_total", "Messages not published: outbound buffer full, too large, or closing.", nil, nil),
		bbLost:       prometheus.NewDesc("netcluster_nats_messages_lost_total", "Other servers' messages known lost (sequence gaps).", nil, nil),
		bbQueueIn:    prometheus.NewDesc("netcluster_nats_queue_messages_received_total", "Of the messages received over NATS, those NATS picked this server for, for a queue group.", nil, nil),
		bbRequeued:   prometheus.NewDesc("netcluster_nats_queue_messages_requeued_total", "Queue group messages published again for another server's member, after this server's last member left.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.start, c.agents, c.msgsIn, c.bytesIn, c.msgsOut, c.bytesOut, c.drop, c.slow, c.refused, c.framesRefused,
		c.requests, c.replies, c.repliesDropped, c.noResponders, c.queueMsgs, c.redispatched, c.queueLost,
		c.streamEnds, c.streamEndsDropped, c.watchesEarly,
		c.netSent, c.netSendDropped, c.netReceived, c.netRejected, c.netRetransmits,
		c.peerDelivered, c.peerRecovered, c.peerLostDatagrams, c.peerLostMessages, c.peerLastSeen,
		c.netMemory, c.netMemoryLimit, c.netEvicted,
		c.rateMsgsIn, c.rateBytesIn, c.rateMsgsOut, c.rateBytesOut, c.rateDrop, c.peerRateDelivered,
		c.bbConnected, c.bbReconnects, c.bbMsgsOut, c.bbBytesOut, c.bbMsgsIn, c.bbBytesIn, c.bbBuffered, c.bbDropped, c.bbLost,
		c.bbQueueIn, c.bbRequeued} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, from one Server.Stats. A
// channel removed by a reload disappears; one added starts from zero.
func (c *statsCollector) Collect(out chan<- prometheus.Metric) {
	st := c.s.Stats()
	out <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, st.NodeID)
	if !st.Started.IsZero() {
		out <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(st.Started.UnixNano())/1e9)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		out <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, ch := range st.Channels {
		out <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(len(ch.Agents)), ch.Name)
		counter(c.msgsIn, ch.MsgsIn, ch.Name)
		counter(c.bytesIn, ch.BytesIn, ch.Name)
		counter(c.msgsOut, ch.MsgsOut, ch.Name)
		counter(c.bytesOut, ch.BytesOut, ch.Name)
		counter(c.drop, ch.Dropped, ch.Name)
		counter(c.slow, ch.Slow, ch.Name)
		counter(c.refused, ch.Refused, ch.Name)
		counter(c.framesRefused, ch.FramesRefused, ch.Name)
		counter(c.requests, ch.Requests, ch.Name)
		counter(c.replies, ch.Replies, ch.Name)
		counter(c.repliesDropped, ch.RepliesDropped, ch.Name)
		counter(c.noResponders, ch.NoResponders, ch.Name)
		counter(c.queueMsgs, ch.QueueMsgs, ch.Name)
		counter(c.redispatched, ch.Redispatched, ch.Name)
		counter(c.queueLost, ch.QueueLost, ch.Name)
		counter(c.streamEnds, ch.StreamEnds, ch.Name)
		counter(c.streamEndsDropped, ch.StreamEndsDropped, ch.Name)
		counter(c.watchesEarly, ch.WatchesEarly, ch.Name)
		if r := ch.Rates; r != nil {
			gauge(c.rateMsgsIn, r.MsgsIn, ch.Name)
			gauge(c.rateBytesIn, r.BytesIn, ch.Name)
			gauge(c.rateMsgsOut, r.MsgsOut, ch.Name)
			gauge(c.rateBytesOut, r.BytesOut, ch.Name)
			gauge(c.rateDrop, r.Dropped, ch.Name)
		}
	}
	if n := st.Network; n != nil {
		counter(c.netSent, n.Sent)
		counter(c.netSendDropped, n.SendDropped)
		counter(c.netReceived, n.Received)
		counter(c.netRetransmits, n.Retransmits)
		gauge(c.netMemory, float64(n.Memory))
		gauge(c.netMemoryLimit, float64(n.MemoryLimit))
		counter(c.netEvicted, n.Evicted)
		for reason, v := range n.Rejected {
			counter(c.netRejected, v, reason)
		}
		for _, p := range n.Peers {
			counter(c.peerDelivered, p.Delivered, p.Node, p.Name)
			counter(c.peerRecovered, p.Recovered, p.Node, p.Name)
			counter(c.peerLostDatagrams, p.LostDatagrams, p.Node, p.Name)
			counter(c.peerLostMessages, p.LostMessages, p.Node, p.Name)
			if p.Rates != nil {
				gauge(c.peerRateDelivered, p.Rates.Delivered, p.Node, p.Name)
			}
			if !p.LastSeen.IsZero() {
				out <- prometheus.MustNewConstMetric(c.peerLastSeen, prometheus.GaugeValue, float64(p.LastSeen.UnixNano())/1e9, p.Node, p.Name)
			}
		}
	}
	if b := st.Backbone; b != nil {
		up := 0.0
		if b.State == "connected" {
			up = 1
		}
		out <- prometheus.MustNewConstMetric(c.bbConnected, prometheus.GaugeValue, up, b.URL)
		counter(c.bbReconnects, b.Reconnects)
		counter(c.bbMsgsOut, b.MsgsOut)
		counter(c.bbBytesOut, b.BytesOut)
		counter(c.bbMsgsIn, b.MsgsIn)
		counter(c.bbBytesIn, b.BytesIn)
		out <- prometheus.MustNewConstMetric(c.bbBuffered, prometheus.GaugeValue, float64(b.Buffered))
		counter(c.bbDropped, b.Dropped)
		counter(c.bbLost, b.Lost)
		counter(c.bbQueueIn, b.QueueIn)
		counter(c.bbRequeued, b.Requeued)
	}
}
