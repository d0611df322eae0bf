package server

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/netbus"
)

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
		MaxMemory:  bus.NetMemory,
		NoLoopback: !bus.MulticastLoop,
		NoOffload:  !bus.NetOffload,
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
		a.Payload == b.Payload && a.MaxMessage == b.MaxMessage && a.MaxMemory == b.MaxMemory &&
		a.NoLoopback == b.NoLoopback && a.NoOffload == b.NoOffload
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
// peers, node name, multicastloop or netoffload (or any other setting the
// Bus is opened with) change, and swaps the keyring in place when only
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

// CheckNetwork reports what would stop the network part of bus from
// starting that the config file's own validation cannot see: with
// connecttonet and no peers, addr must be a multicast group netbus
// accepts (224.0.0.0, the seed sample's, is refused), and netpayload,
// maxnetmessage and nodename must fit together. It opens nothing.
func CheckNetwork(bus *config.Config) error {
	if bus.Backbone() {
		if _, err := backbone.Check(backbone.Config{NATS: bus.NATS}); err != nil {
			return err
		}
	}
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
