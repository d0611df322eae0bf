package config

import (
	_ "embed"
	"maps"
	"os"
	"slices"

	"github.com/netcluster/netcluster/control"
)

// ControlChannel is the name of the channel every configuration has:
// [control.Channel], where the server answers control requests.
const ControlChannel = control.Channel

// EnvSocketDir is the environment variable [Config.ResolveSocketDir]
// consults when the configuration leaves socketdir empty.
const EnvSocketDir = "NETCLUSTER_SOCKETDIR"

// Values of [Config.SlowConsumer].
const (
	// SlowConsumerDrop drops messages for an agent whose outbound buffer is
	// full; the agent stays connected.
	SlowConsumerDrop = "drop"
	// SlowConsumerDisconnect disconnects an agent whose outbound buffer is
	// full.
	SlowConsumerDisconnect = "disconnect"
)

// Defaults of the limits on connections and partial frames, which a zero
// value in a [Config] also means (so a Config written for a version without
// them keeps working).
const (
	DefaultMaxConnections        = 10000
	DefaultMaxChannelConnections = 5000
	DefaultMaxUIDConnections     = 5000
	DefaultPartialFrames         = 64 << 20
)

// Defaults and limits. The file default.jsonc repeats the defaults; a test
// keeps the two in step.
const (
	defaultAddr              = "239.255.44.54"
	defaultPort              = 4454
	defaultSocketMode        = 0o660
	defaultControlSocketMode = 0o600
	defaultMaxFrame          = 16 << 20
	defaultOutBuffer         = 8 << 20
	defaultTTL               = 1
	defaultNetPayload        = 1400
	defaultMaxNetMessage     = 16 << 20
	defaultNetMemory         = 256 << 20

	minMaxFrame      = 1024
	maxMaxFrame      = 1 << 30
	minMemoryLimit   = 16 << 20
	minOutBuffer     = 64 << 10
	minNetPayload    = 512
	maxNetPayload    = 65000
	minMaxNetMessage = 1024
	secretSize       = 32
	maxChannelName   = 64
)

// Config is the server configuration. Each field's comment names its key in
// the file and its default, which is what [New] and [Parse] start from.
//
// A Config is a plain value: nothing in this package changes one after
// returning it, and it may be read from several goroutines at once. Clone it
// before changing a Config that others are reading.
type Config struct {
	// Addr ("addr") is the UDP multicast group. It must parse as an IP
	// address; whether it is a usable group is left to the network layer.
	// "" means no multicast, which only a Config with NATS may say; a file
	// with a nats block and no addr gets "". Default "239.255.44.54".
	Addr string
	// Port ("port") is the UDP port, 1 to 65535. Default 4454.
	Port int
	// DumpNet ("dumpnet") prints every message arriving from the network to
	// the console. Default false.
	DumpNet bool
	// ConnectToNet ("connecttonet") joins the network: multicast or peers,
	// and the NATS backbone when NATS is set. Default false.
	ConnectToNet bool
	// StartControl ("startcontrol") starts the control agent on
	// [ControlChannel]. Default true.
	StartControl bool

	// SocketDir ("socketdir") is the directory of the local sockets.
	// Default "": see [Config.ResolveSocketDir].
	SocketDir string
	// SocketMode ("socketmode") is the permission of each channel's socket,
	// written in the file as an octal string such as "0660". Only the bits
	// in 0777 are allowed. Default 0660.
	SocketMode os.FileMode
	// ControlSocketMode ("controlsocketmode") is the permission of the
	// control channel's socket, as SocketMode. Default 0600.
	ControlSocketMode os.FileMode
	// MaxFrame ("maxframe") is the largest frame, in bytes, an agent may
	// send or receive, 1024 to 1<<30. Default 16 MiB.
	MaxFrame int
	// OutBuffer ("outbuffer") bounds, in bytes, the messages the server
	// queues for one agent; at least 64 KiB. A frame larger than OutBuffer
	// is still delivered when the queue is empty, so OutBuffer may be
	// smaller than MaxFrame. Default 8 MiB.
	OutBuffer int
	// SlowConsumer ("slowconsumer") says what happens when an agent's
	// queue is full: [SlowConsumerDrop] or [SlowConsumerDisconnect].
	// Default "drop".
	SlowConsumer string
	// MaxConnections ("maxconnections") bounds the agent connections the
	// server holds at once, those still in their handshake included; at
	// least 1. A connection past it is refused with an error naming the
	// key. 0 means the default, 10000.
	MaxConnections int
	// MaxChannelConnections ("maxchannelconnections") bounds the
	// connections to one channel, as MaxConnections. 0 means the default,
	// 5000.
	MaxChannelConnections int
	// MaxUIDConnections ("maxuidconnections") bounds the connections of
	// one user, known by the peer credentials of a local socket (in-process
	// agents are not counted), as MaxConnections. 0 means the default,
	// 5000.
	MaxUIDConnections int
	// PartialFrames ("partialframes") bounds, in bytes, what the server
	// holds of frames still arriving that do not fit in a connection's
	// read buffer, summed over every connection: 0 (the default, 64 MiB)
	// or at least 65536. An agent whose frame would pass it is
	// disconnected with an error naming the key, and the refusal is
	// counted.
	PartialFrames int
	// MemoryLimit ("memorylimit") is a soft limit, in bytes, on the memory
	// (RSS) of the server's process: the Go runtime collects more often as
	// the process nears it and returns freed memory to the system to stay
	// under it (runtime/debug.SetMemoryLimit, the GOMEMLIMIT of the
	// process, set to 7/8 of it to leave room for what the runtime does not
	// count, such as the program's code). It is process-wide: a program that embeds the server and
	// sets it shares the limit with the server. 0 (the default) sets no
	// limit (GOMEMLIMIT, if set, applies); otherwise at least 16 MiB. It
	// bounds nothing by itself: it only makes the runtime work harder to
	// stay under it, and the process can pass it. What agents and other
	// nodes can make the server hold is bounded by the other keys, and
	// adds up to more than maxconnections × outbuffer + partialframes:
	// control frames and answers up to twice outbuffer per connection,
	// netmemory for the UDP network, and with a backbone its reassembly
	// of split messages (64 MiB for plain messages and as much for
	// queues) and the NATS client's buffers of messages not yet handled.
	// Choose memorylimit above that sum for it to hold under attack.
	MemoryLimit int

	// Interface ("interface") is the network interface for multicast; ""
	// lets the system choose. Default "".
	Interface string
	// TTL ("ttl") is the multicast time to live, 0 to 255. Default 1.
	TTL int
	// Peers ("peers") are unicast peers, each "host:port" with a port from
	// 1 to 65535. Default none.
	Peers []string
	// NodeName ("nodename") names this node on the network; "" means the
	// host name, looked up by the server. Default "".
	NodeName string
	// Keys ("keys") are the network keys, each {"id": 0-255, "secret":
	// base64 of 32 bytes}. IDs are unique. The first key seals outgoing
	// messages; every key opens incoming ones. Default none.
	Keys []Key
	// NetPayload ("netpayload") is the largest UDP payload sent, in bytes,
	// 512 to 65000. Default 1400.
	NetPayload int
	// MaxNetMessage ("maxnetmessage") is the largest message, in bytes,
	// accepted from the network after reassembly; at least 1024. Default
	// 16 MiB.
	MaxNetMessage int
	// NetMemory ("netmemory") bounds, in bytes, the memory other nodes
	// can make this one hold: peers, gap (NAK) state, out-of-order
	// datagrams and partial messages together; 0 means the default.
	// Beyond it datagrams are refused and counted ("memory"). Default 256
	// MiB.
	NetMemory int
	// MulticastLoop ("multicastloop") lets this host hear the multicast
	// datagrams this node sends, so that other servers on the same host
	// hear it. false turns multicast loop-back off, for a host that runs
	// one server: it no longer receives, checks and drops each of its own
	// datagrams; other servers on the host would then hear nothing from
	// this one. Unused with peers. Default true.
	MulticastLoop bool
	// NetOffload ("netoffload") sends runs of datagrams in one call (UDP
	// GSO) and reads several in one (UDP GRO) where the kernel has them
	// (Linux); false sends and reads one datagram per call. The datagrams
	// on the wire are the same either way. Default true.
	NetOffload bool

	// NATS ("nats") configures the NATS backbone; nil means none. Default
	// nil.
	NATS *NATS

	// Metrics ("metrics") is the "host:port" the metrics endpoint listens
	// on; "" turns it off. Default "".
	Metrics string

	// Channels ("channels") maps each channel name to its settings. Names
	// are checked by [ValidChannelName]. [ControlChannel] is always
	// present. Default: only the control channel.
	Channels map[string]*Channel

	// Source is the path the configuration was read from, or "" for a
	// Config from [New] or [Default]. It is not a key in the file.
	Source string
}

// Key is a network key.
//
// Its String, Format and MarshalJSON methods print "REDACTED" in place of
// the secret, so logging a Config never reveals one.
type Key struct {
	// ID ("id") identifies the key on the wire.
	ID uint8
	// Secret ("secret") is the 32-byte key, written in the file in
	// standard base64 with padding.
	Secret []byte
}

// Channel holds the settings of one channel.
type Channel struct {
	// Propagate ("propagatetochannels") chooses the other channels that
	// receive a copy of each message: false for none, true for all, or a
	// regular expression. Default none.
	Propagate Propagation
	// PropagateToNet ("propagatetonet") sends messages to the network.
	// Default false.
	PropagateToNet bool
	// DumpToConsole ("dumptoconsole") prints messages to the console.
	// Default false.
	DumpToConsole bool
	// AcceptNet ("acceptnet") accepts messages for this channel arriving
	// from the network. Default true in a file, except for the control
	// channel (false); see [NewChannel]. Note the zero Channel has
	// AcceptNet false.
	AcceptNet bool
	// Durable ("durable") keeps the channel's network messages in a
	// JetStream stream; it needs NATS. nil means not durable. Default nil.
	Durable *Durable
}

// NewChannel returns a channel with the defaults a file gives a channel:
// no propagation, AcceptNet true, other flags false.
func NewChannel() *Channel {
	return &Channel{AcceptNet: true}
}

// New returns a configuration holding the defaults stated on each [Config]
// field, with the control channel only (every flag false). [Parse] starts
// from it.
func New() *Config {
	return &Config{
		Addr:                  defaultAddr,
		Port:                  defaultPort,
		StartControl:          true,
		SocketMode:            defaultSocketMode,
		ControlSocketMode:     defaultControlSocketMode,
		MaxFrame:              defaultMaxFrame,
		OutBuffer:             defaultOutBuffer,
		SlowConsumer:          SlowConsumerDrop,
		MaxConnections:        DefaultMaxConnections,
		MaxChannelConnections: DefaultMaxChannelConnections,
		MaxUIDConnections:     DefaultMaxUIDConnections,
		PartialFrames:         DefaultPartialFrames,
		TTL:                   defaultTTL,
		NetPayload:            defaultNetPayload,
		MaxNetMessage:         defaultMaxNetMessage,
		NetMemory:             defaultNetMemory,
		MulticastLoop:         true,
		NetOffload:            true,
		Channels:              map[string]*Channel{ControlChannel: {}},
	}
}

//go:embed default.jsonc
var defaultFile []byte

// DefaultFile returns the commented source of [Default]: a starting point
// for a configuration file, explaining every key.
func DefaultFile() []byte {
	return slices.Clone(defaultFile)
}

// Default returns the built-in configuration, the file [DefaultFile]: the
// defaults of [New], network off, and the channels control, A and B, where A
// and B propagate to every channel. Its Source is "". Each call returns a
// new Config.
func Default() *Config {
	c, err := Parse(defaultFile, "default.jsonc")
	if err != nil {
		panic(err) // default.jsonc is tested; this cannot happen
	}
	c.Source = ""
	return c
}

// Clone returns a deep copy of c. The copy shares only the compiled regular
// expressions, which are immutable.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	d := *c
	d.Peers = slices.Clone(c.Peers)
	d.NATS = c.NATS.clone()
	if c.Keys != nil {
		d.Keys = make([]Key, len(c.Keys))
		for i, k := range c.Keys {
			d.Keys[i] = Key{ID: k.ID, Secret: slices.Clone(k.Secret)}
		}
	}
	if c.Channels != nil {
		d.Channels = make(map[string]*Channel, len(c.Channels))
		for name, ch := range c.Channels {
			if ch != nil {
				cp := *ch
				if ch.Durable != nil {
					du := *ch.Durable
					cp.Durable = &du
				}
				ch = &cp
			}
			d.Channels[name] = ch
		}
	}
	return &d
}

// UDP reports whether c runs the UDP network (multicast, or unicast to
// peers): with connecttonet, unless addr is "" and there are no peers.
func (c *Config) UDP() bool {
	return c.ConnectToNet && (c.Addr != "" || len(c.Peers) > 0)
}

// Backbone reports whether c runs the NATS backbone: with connecttonet and
// a nats block.
func (c *Config) Backbone() bool {
	return c.ConnectToNet && c.NATS != nil
}

// ChannelNames returns the names of c's channels, sorted.
func (c *Config) ChannelNames() []string {
	return slices.Sorted(maps.Keys(c.Channels))
}
