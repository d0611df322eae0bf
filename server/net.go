package server

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
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

// netSendWait bounds how long route waits for room in the Bus's send queue
// before it drops a message for the network (counted). The wait slows down
// only the emitting agent's connection.
const netSendWait = 2 * time.Second

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

	st netCounters

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

// netWarnState is what the last warning reported.
type netWarnState struct {
	sendDropped, unknown, refused, malformed uint64
}

// netConfig is the part of bus that the Bus is opened with. Keys travel
// apart: they change without a rebind.
func netConfig(bus *config.Config, id netbus.NodeID, log *slog.Logger) netbus.Config {
	return netbus.Config{
		Group:      bus.Addr,
		Port:       bus.Port,
		Interface:  bus.Interface,
		TTL:        ttlFor(bus.TTL),
		Peers:      slices.Clone(bus.Peers),
		NodeName:   bus.NodeName,
		NodeID:     id,
		Payload:    bus.NetPayload,
		MaxMessage: bus.MaxNetMessage,
		Logger:     log,
	}
}

// ttlFor maps the config's TTL (0 means this host only) to netbus's (0
// means the default, negative this host only).
func ttlFor(ttl int) int {
	if ttl == 0 {
		return -1
	}
	return ttl
}

func netKeys(bus *config.Config) []netbus.Key {
	if len(bus.Keys) == 0 {
		return nil
	}
	keys := make([]netbus.Key, len(bus.Keys))
	for i, k := range bus.Keys {
		keys[i] = netbus.Key{ID: k.ID, Secret: slices.Clone(k.Secret)}
	}
	return keys
}

// sameBind reports whether a and b open the same sockets.
func sameBind(a, b netbus.Config) bool {
	return a.Group == b.Group && a.Port == b.Port && a.Interface == b.Interface &&
		a.TTL == b.TTL && slices.Equal(a.Peers, b.Peers) && a.NodeName == b.NodeName &&
		a.Payload == b.Payload && a.MaxMessage == b.MaxMessage
}

func sameKeys(a, b []netbus.Key) bool {
	return slices.EqualFunc(a, b, func(x, y netbus.Key) bool {
		return x.ID == y.ID && string(x.Secret) == string(y.Secret)
	})
}

// nodeIDOf turns the server's node id (16 hex digits) into the Bus's, so
// that Message.Node on the other servers names this server's NodeID.
func nodeIDOf(s string) netbus.NodeID {
	var id netbus.NodeID
	hex.Decode(id[:], []byte(s))
	return id
}

// openBus opens a Bus for cfg and keys, naming the config keys in errors.
func (n *netNode) openBus(cfg netbus.Config, keys []netbus.Key) (*netbus.Bus, error) {
	cfg.Keys = keys
	b, err := netbus.New(cfg, n.deliver)
	if err != nil {
		where := fmt.Sprintf("addr %s, port %d", cfg.Group, cfg.Port)
		if len(cfg.Peers) > 0 {
			where = fmt.Sprintf("port %d, peers %v", cfg.Port, cfg.Peers)
		}
		if cfg.Interface != "" {
			where += ", interface " + cfg.Interface
		}
		return nil, fmt.Errorf("netcluster: network (%s): %w", where, err)
	}
	return b, nil
}

// startNetLocked starts the network side if bus asks for it. s.mu is held.
func (s *Server) startNetLocked(bus *config.Config) error {
	if bus.Backbone() {
		s.log.Warn("nats: the backbone is not in this build yet; the nats block is ignored")
	}
	if !bus.UDP() {
		return nil
	}
	n := &netNode{srv: s, log: s.log.With("component", "net"), id: nodeIDOf(s.nodeID)}
	n.bcfg = netConfig(bus, n.id, n.log)
	n.keys = netKeys(bus)
	n.dumpnet.Store(bus.DumpNet)
	n.publishLocked(s)
	b, err := n.openBus(n.bcfg, n.keys)
	if err != nil {
		return err
	}
	n.bus.Store(b)
	n.stop = make(chan struct{})
	n.wg.Add(1)
	go n.reporter()
	s.net.Store(n)
	st := b.Stats()
	n.log.Info("network started", "node", st.Node, "name", st.Name, "addr", st.Addr,
		"group", groupOf(n.bcfg), "sealed", len(n.keys) > 0)
	if len(n.keys) == 0 {
		n.log.Warn("network traffic is PLAINTEXT: no keys configured; anyone on the network can read and inject messages")
	}
	return nil
}

func groupOf(c netbus.Config) string {
	if len(c.Peers) > 0 {
		return fmt.Sprintf("peers %v", c.Peers)
	}
	return fmt.Sprintf("%s:%d", c.Group, c.Port)
}

// publishLocked refreshes the channel snapshot deliveries read. s.mu is
// held.
func (n *netNode) publishLocked(s *Server) {
	m := make(map[string]*channel, len(s.channels))
	for name, ch := range s.channels {
		m[name] = ch
	}
	n.chans.Store(&m)
}

// stopNet closes the network side, flushing what is queued for it.
func (s *Server) stopNet() {
	n := s.net.Swap(nil)
	if n == nil {
		return
	}
	n.bmu.Lock()
	if b := n.bus.Swap(nil); b != nil {
		if err := b.Close(); err != nil {
			n.log.Warn("network close", "err", err)
		}
	}
	n.bmu.Unlock()
	close(n.stop)
	n.wg.Wait()
	n.lmu.Lock()
	n.warnLocked(time.Now()) // what the last interval held back
	n.lmu.Unlock()
}

// prepareNetLocked checks and applies the network part of a reload: it
// starts or stops the network, rebinds when the group, port, interface,
// peers or node name change, and swaps the keyring in place when only
// the keys change. Starting, rebinding and new keys can fail; then the
// network is as it was (a rebind reopens the old sockets, with a new
// session) and the error is returned. The returned commit publishes the
// new channel map; call it once the reload can no longer fail. s.mu is
// held.
func (s *Server) prepareNetLocked(bus *config.Config) (commit func(), err error) {
	n := s.net.Load()
	switch {
	case n == nil && !bus.UDP():
		return func() {}, nil
	case n == nil:
		// Start it now: on error nothing changed.
		if err := s.startNetLocked(bus); err != nil {
			return nil, err
		}
		return func() { s.net.Load().publishLocked(s) }, nil
	case !bus.UDP():
		return func() {
			s.stopNet()
			n.log.Info("network stopped")
		}, nil
	}
	n.bmu.Lock()
	defer n.bmu.Unlock()
	cfg := netConfig(bus, n.id, n.log)
	keys := netKeys(bus)
	// Also rebind when a failed rebind left the network off.
	if n.bus.Load() == nil || !sameBind(cfg, n.bcfg) {
		// Close first, so peers see the old session's tail before the new
		// session's first datagram (a later epoch ends the earlier one).
		if old := n.bus.Load(); old != nil {
			old.Close()
		}
		nb, err := n.openBus(cfg, keys)
		if err != nil {
			if rb, rerr := n.openBus(n.bcfg, n.keys); rerr == nil {
				n.bus.Store(rb)
			} else {
				n.log.Error("network: could not reopen the previous sockets; network off until the next reload", "err", rerr)
				n.bus.Store(nil)
			}
			return nil, err
		}
		n.bus.Store(nb)
		n.bcfg, n.keys = cfg, keys
		n.log.Info("network rebound", "group", groupOf(cfg), "interface", cfg.Interface, "sealed", len(keys) > 0)
	} else if b := n.bus.Load(); b != nil && !sameKeys(keys, n.keys) {
		if err := b.SetKeys(keys); err != nil {
			return nil, fmt.Errorf("netcluster: network keys: %w", err)
		}
		n.keys = keys
		n.log.Info("network keys changed", "sealed", len(keys) > 0)
	}
	if len(keys) == 0 {
		n.log.Warn("network traffic is PLAINTEXT: no keys configured; anyone on the network can read and inject messages")
	}
	n.dumpnet.Store(bus.DumpNet)
	return func() { n.publishLocked(s) }, nil
}

// sendNet sends a message emitted by a local agent on ch to the network.
// raw is the Msg frame as the agent sent it.
func (s *Server) sendNet(ch *channel, raw []byte) {
	n := s.net.Load()
	if n == nil {
		return
	}
	var deadline time.Time
	for {
		b := n.bus.Load()
		if b == nil {
			n.st.sendDropped.Add(1)
			n.warnSoon()
			return
		}
		err := b.Send(ch.name, raw)
		switch {
		case err == nil:
			n.st.sent.Add(1)
			return
		case errors.Is(err, netbus.ErrQueueFull):
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(netSendWait)
			} else if now.After(deadline) {
				n.st.sendDropped.Add(1)
				n.warnSoon()
				return
			}
			time.Sleep(200 * time.Microsecond)
		case errors.Is(err, netbus.ErrClosed) && n.bus.Load() != b:
			// Rebound meanwhile: try the new Bus.
		default:
			n.st.sendDropped.Add(1)
			n.warnSoon()
			return
		}
	}
}

// deliver is the Bus's DeliverFunc: it routes a message from another node
// to the local channel it was emitted on, with the origin node written in
// its Node field. Called from one goroutine at a time.
func (n *netNode) deliver(from netbus.Peer, channel string, frame []byte) {
	n.st.received.Add(1)
	v, ok := parseNetMsg(frame)
	if !ok || string(v.Channel) != channel {
		n.st.malformed.Add(1)
		n.warnSoon()
		return
	}
	if from.ID != n.last || n.name == "" {
		n.last, n.name = from.ID, from.ID.String()
	}
	ch := (*n.chans.Load())[channel]
	verdict := ""
	switch {
	case ch == nil:
		n.st.unknownChannel.Add(1)
		verdict = "unknown-channel"
	case !ch.settings.Load().AcceptNet:
		n.st.refused.Add(1)
		verdict = "acceptnet-false"
	case wire.MsgOverhead+len(channel)+len(v.Agent)+len(n.name)+len(v.Event)+len(v.Data)-4 > n.srv.limits.Load().maxFrame:
		// With the node id added it would exceed what agents accept.
		n.st.refused.Add(1)
		verdict = "larger-than-maxframe"
	}
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(n.name, from, channel, &v, verdict)
	}
	if verdict != "" {
		n.warnSoon()
		return
	}
	out := wire.AppendMsg(make([]byte, 0, len(frame)+len(n.name)), &wire.Msg{
		Flags:   v.Flags,
		Channel: channel,
		Agent:   unsafeString(v.Agent),
		Node:    n.name,
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	})
	nv, _ := wire.ParseMsg(out[wire.HeaderLen:])
	n.st.routed.Add(1)
	ch.route(nil, out, &nv)
}

// parseNetMsg checks that frame is one whole Msg frame with an event.
func parseNetMsg(frame []byte) (wire.MsgView, bool) {
	if len(frame) < wire.HeaderLen || frame[wire.HeaderLen-1] != wire.TypeMsg {
		return wire.MsgView{}, false
	}
	if n := int(frame[0])<<24 | int(frame[1])<<16 | int(frame[2])<<8 | int(frame[3]); n != len(frame)-4 {
		return wire.MsgView{}, false
	}
	v, err := wire.ParseMsg(frame[wire.HeaderLen:])
	if err != nil || len(v.Event) == 0 {
		return wire.MsgView{}, false
	}
	return v, true
}

// warnSoon logs what was refused or dropped since the last warning, at
// most once per netLogInterval: nothing is dropped silently, and a flood
// of bad datagrams does not flood the log.
func (n *netNode) warnSoon() {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	now := time.Now()
	if now.Sub(n.lastWarn) < netLogInterval {
		return
	}
	n.warnLocked(now)
}

// warnLocked logs the counters that grew since the last warning. lmu is
// held. Refused datagrams (wrong key, forgeries, replays) and unrecovered
// losses are logged by the Bus itself.
func (n *netNode) warnLocked(now time.Time) {
	cur := netWarnState{
		sendDropped: n.st.sendDropped.Load(),
		unknown:     n.st.unknownChannel.Load(),
		refused:     n.st.refused.Load(),
		malformed:   n.st.malformed.Load(),
	}
	if cur == n.warned {
		return
	}
	prev := n.warned
	n.warned, n.lastWarn = cur, now
	var args []any
	add := func(key string, now, before uint64) {
		if now > before {
			args = append(args, key, now-before)
		}
	}
	add("unknown_channel", cur.unknown, prev.unknown)
	add("refused_acceptnet", cur.refused, prev.refused)
	add("malformed", cur.malformed, prev.malformed)
	add("send_dropped", cur.sendDropped, prev.sendDropped)
	n.log.Warn("network: messages dropped", args...)
}

// reporter logs, every netLogInterval, drops that warnSoon held back.
func (n *netNode) reporter() {
	defer n.wg.Done()
	t := time.NewTicker(netLogInterval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			n.lmu.Lock()
			if now.Sub(n.lastWarn) >= netLogInterval {
				n.warnLocked(now)
			}
			n.lmu.Unlock()
		case <-n.stop:
			return
		}
	}
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// dumpNet writes the dumpnet line of a message received from the network,
// with dropped=REASON when it is not routed:
//
//	2026-01-04T09:43:00.000Z net node=3f2a… name="host2" from=10.0.0.2:40211 channel=A event="log" agent=… size=12
func (cw *consoleWriter) dumpNet(node string, from netbus.Peer, channel string, v *wire.MsgView, dropped string) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	b := time.Now().UTC().AppendFormat(cw.buf[:0], "2006-01-02T15:04:05.000Z07:00")
	b = append(b, " net node="...)
	b = append(b, node...)
	b = append(b, " name="...)
	b = strconv.AppendQuote(b, from.Name)
	b = append(b, " from="...)
	b = from.Addr.AppendTo(b)
	b = append(b, " channel="...)
	b = append(b, channel...)
	b = append(b, " event="...)
	b = strconv.AppendQuote(b, unsafeString(v.Event))
	b = append(b, " agent="...)
	b = append(b, v.Agent...)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(len(v.Data)), 10)
	if dropped != "" {
		b = append(b, " dropped="...)
		b = append(b, dropped...)
	}
	b = append(b, '\n')
	cw.w.Write(b)
	cw.buf = b
}

// CheckNetwork reports what would stop the network part of bus from
// starting that the config file's own validation cannot see: with
// connecttonet and no peers, addr must be a multicast group netbus
// accepts (224.0.0.0, the seed sample's, is refused), and netpayload,
// maxnetmessage and nodename must fit together. It opens nothing.
func CheckNetwork(bus *config.Config) error {
	if !bus.UDP() {
		return nil
	}
	if len(bus.Peers) == 0 {
		if err := netbus.CheckGroup(bus.Addr); err != nil {
			return fmt.Errorf("addr %q: %w", bus.Addr, err)
		}
	}
	if err := netConfig(bus, netbus.NodeID{}, nil).Check(); err != nil {
		return fmt.Errorf("netpayload %d, maxnetmessage %d, nodename %q: %w", bus.NetPayload, bus.MaxNetMessage, bus.NodeName, err)
	}
	return nil
}
