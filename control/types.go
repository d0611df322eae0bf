package control

import (
	"encoding/json"
	"time"
)

// Channel is the name of the control channel, which every server
// configuration has. Control requests are accepted only on its socket.
const Channel = "control"

// Request is the JSON body of a control request: a command and its
// arguments. [Commands] says which fields each command takes; a field a
// command does not take is an error.
type Request struct {
	Cmd     string `json:"cmd"`
	Path    string `json:"path,omitempty"`    // reloadconfig: absolute path of the file the server reads
	Channel string `json:"channel,omitempty"` // showchannel, showclient
	ID      string `json:"id,omitempty"`      // showclient: the agent's id
}

// Reply is the JSON body of the reply to a control request: OK with the
// command's Result, or not OK with an Error saying why.
type Reply struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Stats is the result of the stats command.
type Stats struct {
	NodeID   string         `json:"node_id"`
	Started  time.Time      `json:"started"`
	Uptime   time.Duration  `json:"uptime_ns"`
	Agents   int            `json:"agents"` // connected agents, all channels
	Channels []ChannelStats `json:"channels"`
	Totals   ChannelStats   `json:"totals"` // sums over the channels; Name "*"

	// Network holds the network side's figures, per peer included. It is
	// present only when the server is on the network (connecttonet), and
	// absent otherwise: there are no zero placeholders.
	Network *NetStats `json:"network,omitempty"`
	// Backbone holds the NATS backbone's figures; present only when the
	// server runs one (connecttonet and a nats block).
	Backbone *BackboneStats `json:"backbone,omitempty"`
}

// BackboneStats describes the NATS backbone of a server (Stats.Backbone).
type BackboneStats struct {
	State      string   `json:"state"`                // "connected", "reconnecting", "connecting", "closed"
	URL        string   `json:"url"`                  // the NATS server connected to, password removed; "" when not connected
	LastError  string   `json:"last_error,omitempty"` // the last connection problem, naming the URL
	Reconnects uint64   `json:"reconnects"`
	MsgsOut    uint64   `json:"msgs_out"`   // messages published (plain) or stored (durable)
	BytesOut   uint64   `json:"bytes_out"`  // their frame bytes
	MsgsIn     uint64   `json:"msgs_in"`    // messages received from other servers
	BytesIn    uint64   `json:"bytes_in"`   // their frame bytes
	Buffered   int      `json:"buffered"`   // bytes held while NATS is unreachable or slow
	Dropped    uint64   `json:"dropped"`    // messages not published: buffer full, too large, closing
	Lost       uint64   `json:"lost"`       // other servers' messages known lost (sequence gaps)
	Duplicates uint64   `json:"duplicates"` // received twice, delivered once
	Malformed  uint64   `json:"malformed"`  // envelopes or frames that did not parse
	Routed     uint64   `json:"routed"`     // received messages routed to a local channel
	Unknown    uint64   `json:"unknown_channel"`
	Refused    uint64   `json:"refused"` // the channel has acceptnet false, or the message exceeds maxframe
	Subjects   []string `json:"subjects"`
	Durable    []string `json:"durable"`          // durable channels being consumed
	QueueIn    uint64   `json:"queue_in"`         // of msgs_in, those NATS picked this server for, for a queue group
	Requeued   uint64   `json:"requeued"`         // queue group messages published again for another server's member
	Groups     []string `json:"groups,omitempty"` // queue subscriptions, "SUBJECT QUEUE"
}

// ChannelStats are one channel's counters in Stats.
type ChannelStats struct {
	Name   string `json:"name"`
	Agents int    `json:"agents"`
	ChannelCounters
	Rates *Rates `json:"rates,omitempty"` // absent in the server's first second
}

// ReloadResult is the result of the reloadconfig command.
type ReloadResult struct {
	Source   string   `json:"source"`   // the file read
	Channels []string `json:"channels"` // the channels now configured, sorted
	Added    []string `json:"added"`    // channels that started listening
	Removed  []string `json:"removed"`  // channels closed, their agents told why
}

// AgentInfo describes one connected agent: the result of showclient, and
// the agents of a ChannelInfo.
type AgentInfo struct {
	Channel   string    `json:"channel"`
	ID        string    `json:"id"`
	PID       int       `json:"pid"` // the peer process (SO_PEERCRED), else what its hello said; -1 unknown
	UID       int       `json:"uid"` // the peer's user id (SO_PEERCRED); -1 unknown
	Legacy    bool      `json:"legacy"`
	Since     time.Time `json:"since"`
	Patterns  []string  `json:"patterns"`
	MsgsIn    uint64    `json:"msgs_in"`  // messages it emitted
	MsgsOut   uint64    `json:"msgs_out"` // messages delivered to it
	BytesOut  uint64    `json:"bytes_out"`
	Dropped   uint64    `json:"dropped"`    // messages dropped because it read too slowly
	Queued    int       `json:"queued"`     // bytes waiting in its outbox
	BufferCap int       `json:"buffer_cap"` // the outbox bound (outbuffer)
	Version   int       `json:"version"`    // the protocol version of its connection (2: requests and queue groups); 0 for legacy
	QueueMsgs uint64    `json:"queue_msgs"` // queue group messages given to it
	// Queues are its queue group memberships (OnQueue), by sid.
	Queues []QueueMembership `json:"queues,omitempty"`
}

// QueueMembership is one queue listener of an agent.
type QueueMembership struct {
	SID     uint32 `json:"sid"`
	Group   string `json:"group"`
	Pattern string `json:"pattern"`
}

// GroupInfo describes one queue group of a channel: its members in the
// order the server picks them.
type GroupInfo struct {
	Group   string        `json:"group"`
	Pattern string        `json:"pattern"`
	Members []GroupMember `json:"members"`
}

// GroupMember is one membership of a queue group.
type GroupMember struct {
	Agent string `json:"agent"`
	SID   uint32 `json:"sid"`
}

// ChannelCounters are a channel's message counters.
type ChannelCounters struct {
	MsgsIn   uint64 `json:"msgs_in"`  // messages emitted on the channel
	BytesIn  uint64 `json:"bytes_in"` // their data bytes
	MsgsOut  uint64 `json:"msgs_out"` // deliveries to its agents
	BytesOut uint64 `json:"bytes_out"`
	Dropped  uint64 `json:"dropped"`        // deliveries dropped for slow consumers
	Slow     uint64 `json:"slow_consumers"` // agents disconnected as slow consumers
	// Refused counts connections refused by a connection limit (the
	// maxconnections keys); FramesRefused, agents disconnected for a frame
	// that would pass partialframes or its deadline.
	Refused       uint64 `json:"refused_connections"`
	FramesRefused uint64 `json:"frames_refused"`

	Requests       uint64 `json:"requests"`        // requests emitted on the channel (by its agents, or from the network)
	Replies        uint64 `json:"replies"`         // answers its agents sent
	RepliesDropped uint64 `json:"replies_dropped"` // answers dropped: the requester was gone (counted on the answering channel)
	NoResponders   uint64 `json:"no_responders"`   // requests told at once that no one can answer
	QueueMsgs      uint64 `json:"queue_msgs"`      // messages given to queue group members, redispatches included
	Redispatched   uint64 `json:"redispatched"`    // queue group messages given to another member after theirs left
	QueueLost      uint64 `json:"queue_lost"`      // queue group messages no member could take

	// StreamEnds counts the StreamEnd notices queued for the channel's
	// agents (protocol version 4: a sender's connection ended);
	// StreamEndsDropped those not sent: the agent's outbox held more than
	// outbuffer and a small allowance, or the sender's uid had used up
	// its budget of StreamEnds (that agent goes on watching the stream).
	StreamEnds        uint64 `json:"stream_ends"`
	StreamEndsDropped uint64 `json:"stream_ends_dropped"`
	// WatchesEarly counts the Watch entries of the channel's agents
	// answered before the server's restart grace ended, as the server
	// held too many (65,536) for its end: a sender not back yet is then
	// reported gone.
	WatchesEarly uint64 `json:"watches_early"`
}

// ChannelInfo describes one channel: the result of showchannel.
type ChannelInfo struct {
	Name   string      `json:"name"`
	Path   string      `json:"path,omitempty"`
	Agents []AgentInfo `json:"agents"`
	Groups []GroupInfo `json:"groups,omitempty"` // its queue groups, by group then pattern
	ChannelCounters
	// Rates are the counters' rates over the server's last sample;
	// absent in the server's first second.
	Rates *Rates `json:"rates,omitempty"`
}

// Rates are per-second rates of a channel's counters, computed by the
// server from two samples of them one second apart, so that every client
// sees the same figures.
type Rates struct {
	MsgsIn   float64 `json:"msgs_in"`
	BytesIn  float64 `json:"bytes_in"`
	MsgsOut  float64 `json:"msgs_out"`
	BytesOut float64 `json:"bytes_out"`
	Dropped  float64 `json:"dropped"`
	Slow     float64 `json:"slow_consumers"`
}

// NetRates are per-second rates of the network side's counters, computed
// as Rates are.
type NetRates struct {
	Sent        float64 `json:"sent"`
	SendDropped float64 `json:"send_dropped"`
	Received    float64 `json:"received"`
	Rejected    float64 `json:"rejected"` // datagrams refused, all reasons
	Retransmits float64 `json:"retransmits"`
}

// PeerRates are per-second rates of a peer's counters, computed as Rates
// are.
type PeerRates struct {
	Delivered    float64 `json:"delivered"`
	Datagrams    float64 `json:"datagrams"`
	Recovered    float64 `json:"recovered"`
	LostMessages float64 `json:"lost_messages"`
}

// NetStats describes the network side of a server (Stats.Network).
type NetStats struct {
	Node   string `json:"node"`   // this server's node id
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

	Datagrams   uint64 `json:"datagrams"`    // data datagrams written to the socket (first transmissions; not those packed and waiting, nor a failed write's)
	Bytes       uint64 `json:"bytes"`        // their bytes
	Retransmits uint64 `json:"retransmits"`  // datagrams sent again after a NAK
	NaksIn      uint64 `json:"naks_in"`      // NAKs received for this node
	Unavailable uint64 `json:"unavailable"`  // NAKed sequences no longer held
	QueueFull   uint64 `json:"queue_full"`   // messages that found the send queue full (then waited up to 2 s), once each
	WriteErrors uint64 `json:"write_errors"` // socket write errors
	Echoes      uint64 `json:"echoes"`       // own datagrams heard back, ignored

	// Memory is what other nodes make this one hold (peers, gap state,
	// out-of-order datagrams, partial messages), accounted in bytes; it
	// stays at most MemoryLimit (netmemory). Evicted counts peers whose
	// state was dropped to make room for one that delivered more.
	Memory      int    `json:"memory"`
	MemoryLimit int    `json:"memory_limit"`
	Evicted     uint64 `json:"evicted"`

	// Rejected counts refused datagrams by reason: "auth" (forged,
	// tampered or wrong key), "unknown-key", "plaintext", "no-keys",
	// "replay", "duplicate", "truncated", "malformed", … Only non-zero
	// reasons appear.
	Rejected map[string]uint64 `json:"rejected"`
	Peers    []NetPeerStats    `json:"peers"` // sorted by node id
	// Rates are rates of the counters above; absent in the first second.
	Rates *NetRates `json:"rates,omitempty"`
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
	// Rates are rates of the counters above; absent until the peer has
	// been seen in two samples.
	Rates *PeerRates `json:"rates,omitempty"`
}
