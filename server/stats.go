package server

import (
	"sort"
	"time"
)

// addCounters adds o to c.
func addCounters(c *ChannelCounters, o ChannelCounters) {
	c.MsgsIn += o.MsgsIn
	c.BytesIn += o.BytesIn
	c.MsgsOut += o.MsgsOut
	c.BytesOut += o.BytesOut
	c.Dropped += o.Dropped
	c.Slow += o.Slow
	c.Refused += o.Refused
	c.FramesRefused += o.FramesRefused
	c.Requests += o.Requests
	c.Replies += o.Replies
	c.RepliesDropped += o.RepliesDropped
	c.NoResponders += o.NoResponders
	c.QueueMsgs += o.QueueMsgs
	c.Redispatched += o.Redispatched
	c.QueueLost += o.QueueLost
	c.StreamEnds += o.StreamEnds
	c.StreamEndsDropped += o.StreamEndsDropped
	c.WatchesEarly += o.WatchesEarly
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	NodeID   string        `json:"node_id"`
	Started  time.Time     `json:"started"` // when Start ran; zero before
	Uptime   time.Duration `json:"uptime_ns"`
	Channels []ChannelInfo `json:"channels"`
	Totals   ChannelInfo   `json:"totals"` // sums over the channels; Name "*", no agents
	Agents   int           `json:"agents"`
	// Network is the network side's figures; nil without connecttonet.
	Network *NetStats `json:"network,omitempty"`
	// Backbone is the NATS backbone's figures; nil without one.
	Backbone *BackboneStats `json:"backbone,omitempty"`
}

func (c *conn) info() AgentInfo {
	c.omu.Lock()
	queued := c.queuedLocked() + c.obig - c.convGone
	legacy, version := c.legacy, c.version
	msgsOut, bytesOut := c.msgsOut, c.bytesOut
	c.omu.Unlock()
	return AgentInfo{
		Channel:   c.ch.name,
		ID:        c.id,
		PID:       c.pid,
		UID:       c.uid,
		Legacy:    legacy,
		Since:     c.since,
		Patterns:  c.ch.index.Patterns(c),
		MsgsIn:    c.msgsIn.Load(),
		MsgsOut:   msgsOut,
		BytesOut:  bytesOut,
		Dropped:   c.dropped.Load(),
		Queued:    queued,
		BufferCap: c.srv.limits.Load().outBuffer,
		Version:   int(version),
		QueueMsgs: c.queuedIn.Load(),
		Queues:    c.memberships(),
	}
}

// counters reads the channel's counters.
func (ch *channel) counters() ChannelCounters {
	return ChannelCounters{
		MsgsIn:   ch.stats.msgsIn.Load(),
		BytesIn:  ch.stats.bytesIn.Load(),
		MsgsOut:  ch.stats.msgsOut.Load(),
		BytesOut: ch.stats.bytesOut.Load(),
		Dropped:  ch.stats.dropped.Load(),
		Slow:     ch.stats.slow.Load(),
		Refused:  ch.stats.refused.Load(),

		FramesRefused: ch.stats.frames.Load(),

		Requests:       ch.stats.requests.Load(),
		Replies:        ch.stats.replies.Load(),
		RepliesDropped: ch.stats.repliesDropped.Load(),
		NoResponders:   ch.stats.noResponders.Load(),
		QueueMsgs:      ch.stats.queueMsgs.Load(),
		Redispatched:   ch.stats.redispatched.Load(),
		QueueLost:      ch.stats.queueLost.Load(),

		StreamEnds:        ch.stats.streamEnds.Load(),
		StreamEndsDropped: ch.stats.streamEndsDropped.Load(),
		WatchesEarly:      ch.stats.watchesEarly.Load(),
	}
}

// info describes the channel; path is ch.path, read by the caller under
// the server's lock (a reload may move the socket).
func (ch *channel) info(path string) ChannelInfo {
	ci := ChannelInfo{
		Name:            ch.name,
		Path:            path,
		Agents:          []AgentInfo{},
		ChannelCounters: ch.counters(),
		Rates:           ch.srv.rates.channelRates(ch),
		Groups:          ch.groups(),
	}
	for _, c := range ch.members() {
		ci.Agents = append(ci.Agents, c.info())
	}
	sort.Slice(ci.Agents, func(i, j int) bool { return ci.Agents[i].Since.Before(ci.Agents[j].Since) })
	return ci
}

// Channel describes a channel and its agents; false if there is no such
// channel.
func (s *Server) Channel(name string) (ChannelInfo, bool) {
	s.mu.Lock()
	ch := s.channels[name]
	var path string
	if ch != nil {
		path = ch.path
	}
	s.mu.Unlock()
	if ch == nil {
		return ChannelInfo{}, false
	}
	return ch.info(path), true
}

// Agent describes the agent with the given id on a channel; false if
// there is none.
func (s *Server) Agent(channel, id string) (AgentInfo, bool) {
	s.mu.Lock()
	ch := s.channels[channel]
	s.mu.Unlock()
	if ch == nil {
		return AgentInfo{}, false
	}
	c := ch.member(id)
	if c == nil {
		return AgentInfo{}, false
	}
	return c.info(), true
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	chans := s.sortedChannelsLocked()
	paths := make([]string, len(chans))
	for i, ch := range chans {
		paths[i] = ch.path
	}
	started := s.started
	s.mu.Unlock()
	st := Stats{NodeID: s.nodeID, Started: started, Totals: ChannelInfo{Name: "*"}}
	if !started.IsZero() {
		st.Uptime = time.Since(started)
	}
	for i, ch := range chans {
		ci := ch.info(paths[i])
		st.Agents += len(ci.Agents)
		addCounters(&st.Totals.ChannelCounters, ci.ChannelCounters)
		st.Channels = append(st.Channels, ci)
	}
	st.Network = s.netStats()
	st.Backbone = s.backboneStats()
	s.rates.fill(&st)
	return st
}
