package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
)

// The network side of a Server: with connecttonet, a netbus.Bus carries
// the messages of channels with propagatetonet to the other servers of the
// group, and delivers theirs as if a remote agent had emitted them on the
// local channel of the same name.
//
// Routing never takes Server.mu: route reads Server.net, and the Bus's
// deliver callback reads netNode.chans, both atomic snapshots replaced
// under Server.mu by Start, Reload and Close. So a reload may close a Bus
// (which waits for its deliver callback) while holding Server.mu.
//
// The network side is split by job: net_lifecycle.go starts, stops and
// rebinds it; net_route.go carries messages between the Bus and the local
// channels; net_warn.go reports what was dropped; net_stats.go gives the
// figures; console.go writes the dumpnet lines.

// netLogInterval is the least time between two warnings about refused or
// dropped network messages.
const netLogInterval = 5 * time.Second

// netNode is the running network side. It outlives rebinds: a reload that
// changes the group, port, interface or peers replaces its Bus, keeping
// the node id, the counters and the channel snapshot.
type netNode struct {
	srv *Server
	log *slog.Logger
	id  netbus.NodeID

	// bmu serialises the Bus's replacement; bus is read without it.
	bmu  sync.Mutex
	bus  atomic.Pointer[netbus.Bus]
	bcfg netbus.Config // what bus was opened with (Keys excluded)
	keys []netbus.Key

	// chans is the channel map deliveries look up: name → channel.
	chans atomic.Pointer[map[string]*channel]

	dumpnet atomic.Bool

	// Scratch of the deliver callback (one goroutine at a time).
	name string // cached node id string of the last sender
	last netbus.NodeID

	st    netCounters
	waits sync.Pool // of *sendWait, see send

	lmu      sync.Mutex // guards the fields below
	lastWarn time.Time
	warned   netWarnState

	stop chan struct{} // stops reporter
	wg   sync.WaitGroup
}

// netCounters count what the server did with network messages.
type netCounters struct {
	sent           atomic.Uint64 // messages handed to the Bus
	sendDropped    atomic.Uint64 // messages not sent: queue full past netSendWait, too large, closed
	received       atomic.Uint64 // messages delivered by the Bus
	routed         atomic.Uint64 // of which routed to a local channel
	unknownChannel atomic.Uint64 // dropped: no such channel here
	refused        atomic.Uint64 // dropped: the channel has acceptnet false
	malformed      atomic.Uint64 // dropped: not a valid Msg frame
}
