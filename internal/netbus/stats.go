package netbus

import (
	"net/netip"
	"strconv"
	"time"
)

// Reason says why a received datagram was refused.
type Reason uint8

// Reasons. ONLY APPEND TO THIS LIST: numbers may be stored or exported.
const (
	ReasonTruncated   Reason = iota // shorter than its header or body says
	ReasonBadMagic                  // not a netbus datagram
	ReasonBadVersion                // another protocol version
	ReasonMalformed                 // a header or body field is invalid
	ReasonPlaintext                 // unsealed, but this node requires keys
	ReasonNoKeys                    // sealed, but this node has no keys
	ReasonUnknownKey                // sealed with a key id not in the keyring
	ReasonAuth                      // AEAD open failed: forged, tampered or wrong key
	ReasonDuplicate                 // sequence already accepted (network duplicate, redundant retransmission or replay)
	ReasonReplay                    // sequence older than the replay window
	ReasonStaleEpoch                // from an earlier session of a known node
	ReasonPeerLimit                 // from one node too many (Config.MaxPeers)
	ReasonMisdirected               // a NAK meant for another node or session
	ReasonMemory                    // holding it would exceed Config.MaxMemory
	ReasonTakeover                  // plaintext: a new session of a live node from another address
	ReasonStaleTime                 // a timed heartbeat sent before this node started, or off its clock by more than MaxClockSkew
	ReasonUnfresh                   // sealed data of a session with no timed heartbeat since this node started
	numReasons
)

var reasonNames = [numReasons]string{
	"truncated", "bad-magic", "bad-version", "malformed", "plaintext", "no-keys",
	"unknown-key", "auth", "duplicate", "replay", "stale-epoch", "peer-limit", "misdirected",
	"memory", "takeover", "stale-time", "unfresh",
}

// String returns the reason's name, e.g. "auth".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason-" + strconv.Itoa(int(r))
}

// MarshalText makes Reason a readable JSON map key.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Peer identifies the node a message came from.
type Peer struct {
	ID   NodeID
	Name string         // from its heartbeats; "" until one arrives
	Addr netip.AddrPort // its unicast address
}

// PeerStats describes one remote node's stream as seen by this node.
type PeerStats struct {
	Peer
	Epoch      uint64    // its session (start time in ns)
	LastSeen   time.Time // last datagram accepted from it
	HighestSeq uint64    // highest data sequence received or announced
	NextSeq    uint64    // next data sequence to deliver
	Delivered  uint64    // messages handed to the deliver callback (counted when the call returns)
	Datagrams  uint64    // data datagrams accepted
	Reordered  uint64    // datagrams that filled a gap before any NAK
	Recovered  uint64    // datagrams that filled a gap after a NAK
	// LostDatagrams counts sequence numbers given up (unrecovered).
	LostDatagrams uint64
	// LostMessages counts messages never delivered: inside lost datagrams
	// (known exactly from message numbers) or partly reassembled and
	// dropped (timeout, memory bound, too big).
	LostMessages uint64
	Duplicates   uint64 // datagrams refused as already accepted
	Late         uint64 // datagrams that arrived after their sequence was given up
	NaksSent     uint64 // NAK datagrams sent to it
	Restarts     uint64 // new sessions (epochs) seen
	Pending      int    // bytes held out of order
}

// SendStats counts this node's sending side.
type SendStats struct {
	Messages   uint64 // accepted by Send and packed
	Fragmented uint64 // of which split into fragments
	// Datagrams counts data datagrams written: first transmissions the
	// transport took without error, not those packed and still waiting
	// for the window or the socket (Messages counts messages when
	// packed), nor those of a write that failed (WriteErrors). What the
	// network loses after the write is counted here.
	Datagrams    uint64
	Bytes        uint64 // bytes of those datagrams
	QueueFull    uint64 // messages that found the send queue full: refused by Send, or held by SendWait (once each)
	Retransmits  uint64 // datagrams sent again after a NAK
	NaksReceived uint64 // NAK datagrams received for this node
	Unavailable  uint64 // NAKed sequences no longer in the history
	Heartbeats   uint64 // heartbeats sent
	WriteErrors  uint64 // transport write errors
	WindowWaits  uint64 // times the writer waited for receivers' acks (flow control)
	WindowCuts   uint64 // times the window was halved after a large NAK
	Window       int    // the window now, in datagrams
}

// Stats is a snapshot of a Bus.
type Stats struct {
	Node     NodeID
	Name     string
	Epoch    uint64
	Addr     netip.AddrPort
	Sent     SendStats
	Echoes   uint64            // own datagrams received back (multicast loopback), ignored
	Rejected map[Reason]uint64 // refused datagrams by reason; only non-zero reasons
	// Memory is the receive state's accounted bytes (peers, windows,
	// gaps, out-of-order datagrams, reassembly), at most MemoryLimit
	// (Config.MaxMemory).
	Memory, MemoryLimit int
	// Evicted counts peers whose windows and stream were dropped to make
	// room within MemoryLimit for a peer that delivered more.
	Evicted uint64
	Peers   []PeerStats // sorted by node id
}
