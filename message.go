package netcluster

import (
	"encoding/json"
	"fmt"
)

// Message is one event as a handler receives it. The handler owns it and
// may keep it, unless the agent has WithBorrowedMessages: then it is
// valid only until the handler returns (see there, and Clone).
type Message struct {
	// Event is the event name.
	Event string
	// Data is the event's payload: JSON when JSON is true (the default
	// codec of Emit), else the bytes given to EmitRaw.
	Data []byte
	// Channel is the channel the message was emitted on.
	Channel string
	// Agent is the id of the agent that emitted it.
	Agent string
	// Node is the id of the server the message came from over the network,
	// or "" for a message emitted on this server.
	Node string

	// Set for a request (IsRequest): the agent that got it, to answer
	// with, and the request's id. One pointer, not the two words, keeps
	// a Message at 104 bytes (see below).
	call *call

	// JSON reports whether Data is a JSON document.
	JSON bool
	// Local reports whether the message was delivered in memory by this
	// agent's own Emit or Request.
	Local bool
	// Replayed reports whether the message was read back from a durable
	// channel's stored history by Agent.Replay, not delivered live.
	Replayed bool
	// (The flags come last, together: a Message is then 104 bytes, not
	// 112 or 128, and every message received is one, from a slab:
	// alloc.go.)
}

// call is what a request's Message needs to be answered: the agent that
// got it and the request's id.
type call struct {
	agent *Agent
	id    uint64
}

// Decode unmarshals the message's JSON data into v.
func (m *Message) Decode(v any) error {
	if !m.JSON {
		return fmt.Errorf("netcluster: event %q carries raw bytes, not JSON", m.Event)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("netcluster: decode event %q: %w", m.Event, err)
	}
	return nil
}

// Handler is called for each message that matches a listener.
type Handler func(*Message)
