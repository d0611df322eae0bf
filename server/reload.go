package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// Reload applies a new configuration to the running server, all of it or,
// on error, none of it: new channels start listening, removed channels
// close their agents (telling them why) and their sockets, changed flags
// apply from the next message, and agents of the other channels keep
// their connections. A channel whose socket path changes listens on the
// new path before the old socket closes; its agents stay connected.
func (s *Server) Reload(bus *config.Config) error {
	if bus == nil {
		return errors.New("netcluster: reload: nil config")
	}
	bus = bus.Clone()
	if err := bus.Validate(); err != nil {
		return fmt.Errorf("netcluster: reload: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateClosed {
		return ErrServerClosed
	}

	// First everything that can fail: new listeners, then metrics, then
	// the network, which has no undo (it may rebind, see prepareNetLocked).
	socks, err := s.openSockets(bus)
	if err != nil {
		return fmt.Errorf("netcluster: reload: %w", err)
	}
	metricsCommit, metricsAbort, err := s.metrics.prepare(s, bus.Metrics)
	if err != nil {
		socks.undo()
		return fmt.Errorf("netcluster: reload: %w", err)
	}
	bbCommit, bbAbort, err := s.prepareBackboneLocked(bus)
	if err != nil {
		metricsAbort()
		socks.undo()
		return fmt.Errorf("netcluster: reload: %w", err)
	}
	netCommit, err := s.prepareNetLocked(bus)
	if err != nil {
		bbAbort()
		metricsAbort()
		socks.undo()
		return fmt.Errorf("netcluster: reload: %w", err)
	}

	// Then what cannot fail.
	removed := s.applyChannels(bus, socks)
	s.bus = bus
	s.limits.Store(limitsOf(bus))
	s.memLimit.apply(bus.MemoryLimit)
	s.relinkLocked(bus)
	netCommit()
	bbCommit()
	metricsCommit()
	for _, ch := range removed {
		ch.closeListener()
		for _, c := range ch.members() {
			c.closeWithError(&protoError{code: wire.CodeChannelGone, text: fmt.Sprintf("channel %q was removed from the configuration", ch.name)})
		}
		s.log.Info("channel removed", "channel", ch.name)
	}
	return nil
}

// reloadSockets are the listeners a reload opens before it commits.
type reloadSockets struct {
	opened map[string]*channel // channels the new configuration adds
	moved  map[string]moveTo   // channels whose socket path changes
}

// undo closes what openSockets opened.
func (r *reloadSockets) undo() {
	for _, ch := range r.opened {
		ch.closeListener()
	}
	for _, m := range r.moved {
		m.ln.Close()
	}
}

// openSockets opens the channels bus adds and the new sockets of channels
// whose path changes; on error it closes them again. Call with s.mu held.
func (s *Server) openSockets(bus *config.Config) (*reloadSockets, error) {
	r := &reloadSockets{opened: make(map[string]*channel), moved: make(map[string]moveTo)}
	dir := bus.ResolveSocketDir()
	for _, name := range bus.ChannelNames() {
		ch := s.channels[name]
		if ch == nil {
			nch, err := s.openChannel(bus, name)
			if err != nil {
				r.undo()
				return nil, err
			}
			r.opened[name] = nch
			continue
		}
		if s.cfg.NoListen || ch.passed || ch.path == transport.SocketPath(dir, name) && sameMode(s.bus, bus, name) {
			continue
		}
		path := transport.SocketPath(dir, name)
		if path == ch.path {
			continue // mode change only: applied by applyChannels with chmod
		}
		ln, err := transport.Listen(path, transport.ListenConfig{Mode: modeFor(bus, name)})
		if err != nil {
			r.undo()
			return nil, fmt.Errorf("channel %s: %w", name, err)
		}
		r.moved[name] = moveTo{ln: ln, path: path}
	}
	return r, nil
}

// applyChannels makes the server's channels those of bus: it drops the
// removed ones (returned, to be closed once the reload is committed),
// moves sockets to their new paths, changes socket modes and starts the
// added channels. Call with s.mu held, before s.bus becomes bus.
func (s *Server) applyChannels(bus *config.Config, r *reloadSockets) (removed []*channel) {
	for name, ch := range s.channels {
		if _, ok := bus.Channels[name]; !ok {
			// Its agents are being closed: they propagate nowhere.
			ch.settings.Store(&settings{Channel: ch.settings.Load().Channel})
			removed = append(removed, ch)
			delete(s.channels, name)
			continue
		}
		if m, ok := r.moved[name]; ok {
			old := ch.ln
			ch.ln, ch.path = m.ln, m.path
			old.Close()
			s.startAccepting(ch)
		} else if ch.path != "" && !ch.passed && !sameMode(s.bus, bus, name) {
			if err := chmodSocket(ch.path, modeFor(bus, name)); err != nil {
				s.log.Warn("reload: could not change socket mode", "channel", name, "err", err)
			}
		}
	}
	for name, ch := range r.opened {
		s.channels[name] = ch
		s.startAccepting(ch)
	}
	return removed
}

type moveTo struct {
	ln   net.Listener
	path string
}

func modeFor(bus *config.Config, channel string) os.FileMode {
	if channel == control.Channel {
		return bus.ControlSocketMode
	}
	return bus.SocketMode
}

func sameMode(a, b *config.Config, channel string) bool {
	return modeFor(a, channel) == modeFor(b, channel)
}

// chmodSocket changes a Unix socket's mode. Named pipes keep their
// security descriptor.
func chmodSocket(path string, mode os.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	return os.Chmod(path, mode)
}
