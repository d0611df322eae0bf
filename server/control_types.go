package server

import (
	"time"

	"github.com/netcluster/netcluster/control"
)

// The descriptions Server.Channel, Server.Agent and Server.Stats return
// are the JSON shapes of the control protocol, defined once in package
// control.
type (
	// AgentInfo describes one connected agent.
	AgentInfo = control.AgentInfo
	// ChannelCounters are a channel's message counters.
	ChannelCounters = control.ChannelCounters
	// ChannelInfo describes one channel.
	ChannelInfo = control.ChannelInfo
	// NetStats describes the network side of a server (Stats.Network).
	NetStats = control.NetStats
	// NetPeerStats describes another node as this server sees it.
	NetPeerStats = control.NetPeerStats
	// BackboneStats describes the NATS backbone (Stats.Backbone).
	BackboneStats = control.BackboneStats
)

// startTime returns when Start ran; zero before.
func (s *Server) startTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}
