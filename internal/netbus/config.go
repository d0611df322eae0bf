package netbus

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultGroup      = "239.255.44.54" // administratively scoped (RFC 2365), never routed off-site
	DefaultPort       = 4454
	DefaultTTL        = 1       // one hop: the local network
	DefaultPayload    = 1400    // fits a 1500-byte MTU with IPv4, UDP and tunnel headroom
	DefaultMaxMessage = 1 << 20 // 1 MiB
	DefaultMaxMemory  = 256 << 20
)

// Config configures a Bus. The zero value is valid: multicast on
// DefaultGroup:DefaultPort over the route's interface, plaintext. New
// copies it; later changes to the caller's value have no effect.
type Config struct {
	// Group is the multicast group. Default DefaultGroup. 224.0.0.0 and
	// the rest of 224.0.0.0/24 (link-local control block) are refused
	// with an error suggesting a 239.255.x.y group.
	Group string
	// Port is the UDP port of the group, and in Peers mode this node's
	// port. Default DefaultPort.
	Port int
	// Interface names the interface multicast is sent and joined on
	// (e.g. "eth0", "lo"). Default: the kernel's choice for the group.
	Interface string
	// TTL is the multicast TTL. Default DefaultTTL (1). Negative means 0:
	// this host only.
	TTL int
	// Peers switches to unicast mode: every datagram meant for the group
	// is sent to each "host:port" listed (this node's own address may be
	// listed; it is filtered by node id). Multicast is off.
	Peers []string
	// UnicastPort is the port of the unicast socket that sends every
	// datagram and receives NAKs and retransmissions in multicast mode.
	// Default 0: an ephemeral port. Unused in Peers mode.
	UnicastPort int
	// NoLoopback turns multicast loopback off: this host does not hear
	// the group datagrams this node sends. Set it when the host runs one
	// node (one server): it then no longer receives, checks and drops each
	// of its own datagrams. Other nodes on the same host would hear
	// nothing from this one. Default false: loopback on. Unused in Peers
	// mode.
	NoLoopback bool
	// NoOffload turns UDP segmentation offload (GSO: a run of datagrams
	// in one send) and receive coalescing (GRO: several datagrams in one
	// read) off. Default false: both are used where the kernel has them
	// (Linux), and GSO turns itself off if a send says the path cannot do
	// it. The datagrams on the wire are the same either way.
	NoOffload bool
	// Transport replaces the UDP transport (and the fields above); the Bus
	// owns it and closes it on Close. Default nil: ListenUDP.
	Transport PacketTransport

	// NodeName is carried in heartbeats so peers can name this node.
	// Default os.Hostname(). At most 255 bytes.
	NodeName string
	// NodeID overrides the random per-process node id (testing, tools).
	// Default zero: random.
	NodeID NodeID
	// Keys is the keyring: Keys[0] seals, all keys open. Default none:
	// plaintext, and sealed datagrams are refused.
	Keys []Key

	// Payload is the largest datagram sent, header and tag included.
	// Default DefaultPayload. Between 512 and 65507. Every node should use
	// the same value; datagrams bigger than max(Payload, 9000) are cut.
	Payload int
	// MaxMessage is the largest frame Send accepts and reassembly builds.
	// Default DefaultMaxMessage.
	MaxMessage int
	// SendQueue bounds the bytes queued by Send and not yet packed into
	// datagrams; beyond it Send returns ErrQueueFull. Default 8 MiB.
	SendQueue int
	// History bounds the bytes of sent datagrams kept for retransmission.
	// Default 32 MiB.
	History int
	// HistoryAge bounds how long a sent datagram is kept. Default 10s.
	HistoryAge time.Duration
	// MaxPending bounds the bytes of out-of-order datagrams held per peer
	// while a gap is repaired. Default 16 MiB.
	MaxPending int
	// MaxPendingTotal bounds the same across all peers. Default 64 MiB.
	MaxPendingTotal int
	// MaxReassembly bounds the bytes of partly reassembled messages across
	// all peers (each peer has at most one). Default 64 MiB.
	MaxReassembly int
	// ReassemblyTimeout drops a partly reassembled message this long after
	// its first fragment. Default 5s.
	ReassemblyTimeout time.Duration

	// Tick is the period of the timer that sends NAKs, declares losses and
	// expires state. Default 5ms.
	Tick time.Duration
	// NakDelay is how long a gap may stay open, to allow for reordering,
	// before the first NAK. Default 0: the next tick.
	NakDelay time.Duration
	// NakInterval is the wait between NAKs for the same sequence. Default 10ms.
	NakInterval time.Duration
	// NakRetries is how many NAKs in a row are sent for a gap without any
	// of its sequences arriving before it is declared lost (a sender
	// answering a long gap in parts, up to 1024 datagrams per NAK, is
	// not cut short). Default 50 (half a second at the default interval:
	// the sender keeps what its receivers have not acked).
	NakRetries int
	// HeartbeatInterval is the period of heartbeats. Default 100ms.
	HeartbeatInterval time.Duration
	// MaxClockSkew is how far apart the clocks of two nodes may be: a
	// timed heartbeat whose time is further from ours, or earlier than
	// our start, is refused (ReasonStaleTime), and with keys a session's
	// data is accepted only after one of its heartbeats passed. Default
	// 10s.
	MaxClockSkew time.Duration
	// PeerTimeout forgets a peer silent this long. Default 30s.
	PeerTimeout time.Duration
	// MaxPeers bounds the peers tracked; datagrams from more are refused.
	// Default 1024.
	MaxPeers int
	// MaxMemory bounds the memory other nodes can make this one hold:
	// peers and their replay windows, gap ranges (NAK state),
	// out-of-order datagrams and partly reassembled messages, all
	// together. Datagrams that would go beyond it are refused and counted
	// (ReasonMemory). Default DefaultMaxMemory.
	MaxMemory int

	// Logger receives peer joins, restarts and loss reports. Default:
	// discard.
	Logger *slog.Logger
}

// Check reports whether New would refuse c (payload, message size and node
// name limits), without opening anything.
func (c Config) Check() error {
	return c.setDefaults() // on a copy
}

func (c *Config) setDefaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	def(&c.Port, DefaultPort)
	switch {
	case c.TTL == 0:
		c.TTL = DefaultTTL
	case c.TTL < 0:
		c.TTL = 0
	}
	def(&c.Payload, DefaultPayload)
	def(&c.MaxMessage, DefaultMaxMessage)
	def(&c.SendQueue, 8<<20)
	def(&c.History, 32<<20)
	defDur(&c.HistoryAge, 10*time.Second)
	def(&c.MaxPending, 16<<20)
	def(&c.MaxPendingTotal, 64<<20)
	def(&c.MaxReassembly, 64<<20)
	defDur(&c.ReassemblyTimeout, 5*time.Second)
	defDur(&c.Tick, 5*time.Millisecond)
	defDur(&c.NakInterval, 10*time.Millisecond)
	def(&c.NakRetries, 50)
	defDur(&c.HeartbeatInterval, 100*time.Millisecond)
	defDur(&c.PeerTimeout, 30*time.Second)
	defDur(&c.MaxClockSkew, 10*time.Second)
	def(&c.MaxPeers, 1024)
	def(&c.MaxMemory, DefaultMaxMemory)
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Payload < 512 || c.Payload > 65507:
		return fmt.Errorf("netbus: config: payload %d outside 512..65507", c.Payload)
	case len(c.NodeName) > maxNameLen:
		return fmt.Errorf("netbus: config: node name is %d bytes, max %d", len(c.NodeName), maxNameLen)
	case c.MaxMessage < 0 || c.MaxMessage > maxMessageFor(c.Payload):
		return fmt.Errorf("netbus: config: max message %d outside 0..%d for payload %d", c.MaxMessage, maxMessageFor(c.Payload), c.Payload)
	case c.NakRetries < 0 || c.MaxPeers < 0 || c.SendQueue < 0 || c.History < 0 || c.MaxMemory < 0:
		return fmt.Errorf("netbus: config: negative limit")
	}
	return nil
}

// maxMessageFor is the largest message 65535 fragments can carry with the
// longest channel name.
func maxMessageFor(payload int) int {
	return 0xffff * (payload - headerLen - tagLen - fragBodyFixed - maxChannelLen)
}
