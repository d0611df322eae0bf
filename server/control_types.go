package server

import (
	"encoding/json"
	"time"
)

// ControlRequest is the JSON body of a control request: a command and its
// arguments. docs/CONTROL.md lists the commands and the arguments each
// takes; a field a command does not take is an error.
type ControlRequest struct {
	Cmd     string `json:"cmd"`
	Path    string `json:"path,omitempty"`    // reloadconfig: absolute path of the file the server reads
	Channel string `json:"channel,omitempty"` // showchannel, showclient
	ID      string `json:"id,omitempty"`      // showclient: the agent's id
}

// ControlReply is the JSON body of the reply to a control request: OK
// with the command's Result, or not OK with an Error saying why.
type ControlReply struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// ControlStats is the result of the stats command.
type ControlStats struct {
	NodeID   string                `json:"node_id"`
	Started  time.Time             `json:"started"`
	Uptime   time.Duration         `json:"uptime_ns"`
	Agents   int                   `json:"agents"` // connected agents, all channels
	Channels []ControlChannelStats `json:"channels"`
	Totals   ControlChannelStats   `json:"totals"` // sums over the channels; Name "*"

	// Network holds the network side's figures, per peer included. It is
	// present only when the server is on the network (connecttonet), and
	// absent otherwise: there are no zero placeholders.
	Network *NetStats `json:"network,omitempty"`
}

// ControlChannelStats are one channel's counters in ControlStats.
type ControlChannelStats struct {
	Name   string `json:"name"`
	Agents int    `json:"agents"`
	ChannelCounters
}

// ControlReload is the result of the reloadconfig command.
type ControlReload struct {
	Source   string   `json:"source"`   // the file read
	Channels []string `json:"channels"` // the channels now configured, sorted
	Added    []string `json:"added"`    // channels that started listening
	Removed  []string `json:"removed"`  // channels closed, their agents told why
}

// startTime returns when Start ran; zero before.
func (s *Server) startTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}
