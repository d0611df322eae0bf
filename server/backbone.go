package server

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/backbone"
)

// The NATS side of a Server: with connecttonet and a nats block, a
// backbone.Backbone publishes the messages of channels with propagatetonet
// and delivers the other servers' as the UDP network does (see net.go):
// to the local channel of the same name, never back to any network.
// It runs beside the UDP network or alone.
//
// Routing reads Server.bb and bbNode.chans, atomic snapshots replaced
// under Server.mu by Start, Reload and Close.

// bbNode is the running backbone side.
type bbNode struct {
	srv *Server
	log *slog.Logger
	b   *backbone.Backbone
	key string // what b was opened with; a reload that changes it reopens

	chans atomic.Pointer[map[string]*channel]

	st      bbCounters
	dumpnet atomic.Bool

	scratch sync.Pool // *bbScratch: deliver's views and frames

	pmu        sync.Mutex
	paceCredit pauseCredit // what senders may still wait for NATS (pace)

	kick chan struct{} // the listeners changed: recompute the interest
	// interestHook, set by tests, runs before each pass of interestLoop:
	// holding it holds the backbone's view of the listeners.
	interestHook atomic.Pointer[func()]
	// flushHook, set by tests, runs before a reader hands a run over
	// (flushBackbone).
	flushHook atomic.Pointer[func()]
	// listenHook, set by tests, runs when listening is about to answer
	// true: what it does happens between the durable consumer's check
	// and its routing.
	listenHook atomic.Pointer[func(channel string)]
	stop       chan struct{}
	wg         sync.WaitGroup
}

// bbCounters count what the server did with messages from NATS.
type bbCounters struct {
	received       atomic.Uint64
	routed         atomic.Uint64
	unknownChannel atomic.Uint64
	refused        atomic.Uint64
	malformed      atomic.Uint64
}

// backboneConfig is the backbone.Config of bus.
func (s *Server) backboneConfig(bus *config.Config, log *slog.Logger) backbone.Config {
	durable := make(map[string]config.Durable)
	for name, ch := range bus.Channels {
		if ch != nil && ch.Durable != nil {
			durable[name] = *ch.Durable
		}
	}
	return backbone.Config{
		NATS:       bus.NATS,
		Durable:    durable,
		NodeID:     backbone.NodeID(nodeIDOf(s.nodeID)),
		NodeName:   nodeName(bus),
		MaxMessage: bus.MaxFrame,
		Logger:     log,
	}
}

// nodeName is the name the backbone's durable consumers are named after:
// nodename, else the host name.
func nodeName(bus *config.Config) string {
	if bus.NodeName != "" {
		return bus.NodeName
	}
	h, _ := os.Hostname()
	return h
}

// backboneKey fingerprints what a Backbone is opened with, secrets
// included (it is never shown).
func backboneKey(cfg backbone.Config) string {
	n := cfg.NATS
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %q %q %q %q %+v %q %q %d %q %d|", n.URLs, n.Name, n.Creds, n.NKey, n.User, n.Password, n.Token,
		n.TLS, n.Prefix, n.Cluster, n.OutBuffer, cfg.NodeName, cfg.MaxMessage)
	for _, name := range slices.Sorted(maps.Keys(cfg.Durable)) {
		fmt.Fprintf(&b, "%s=%+v;", name, cfg.Durable[name])
	}
	return b.String()
}

// openBackbone starts a bbNode for bus (not yet published in s.bb).
func (s *Server) openBackbone(bus *config.Config) (*bbNode, error) {
	n := &bbNode{srv: s, log: s.log.With("component", "nats"), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	cfg := s.backboneConfig(bus, n.log)
	cfg.DeliverGroup = n.deliverGroup
	cfg.Listening = n.listening
	b, err := backbone.New(cfg, n.deliver)
	if err != nil {
		return nil, fmt.Errorf("netcluster: nats: %w", err)
	}
	n.b, n.key = b, backboneKey(cfg)
	n.dumpnet.Store(bus.DumpNet)
	n.publishLocked(s)
	n.wg.Add(1)
	go n.interestLoop()
	n.log.Info("nats backbone started", "urls", redactURLs(bus.NATS.URLs), "prefix", bus.NATS.Prefix,
		"cluster", bus.NATS.Cluster, "durable", slices.Sorted(maps.Keys(cfg.Durable)))
	return n, nil
}

func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = config.RedactURL(u)
	}
	return out
}

// startBackboneLocked starts the backbone if bus asks for it. s.mu is held.
func (s *Server) startBackboneLocked(bus *config.Config) error {
	if !bus.Backbone() {
		return nil
	}
	n, err := s.openBackbone(bus)
	if err != nil {
		return err
	}
	s.bb.Store(n)
	n.kickInterest()
	return nil
}

// close stops n's backbone and its goroutine.
func (n *bbNode) close() {
	close(n.stop)
	n.wg.Wait()
	n.b.Close()
}

// stopBackbone closes the backbone side.
func (s *Server) stopBackbone() {
	if n := s.bb.Swap(nil); n != nil {
		n.close()
	}
}

// prepareBackboneLocked checks and applies the backbone part of a reload:
// it starts, stops or, when its settings change, reopens the backbone
// (the new one opened before the old is closed, but consuming durable
// channels only once the old one has stopped consuming them; local
// agents are not touched). The returned commit publishes the new channel map; abort
// undoes what prepare did. s.mu is held.
func (s *Server) prepareBackboneLocked(bus *config.Config) (commit, abort func(), err error) {
	old := s.bb.Load()
	nothing := func() {}
	switch {
	case old == nil && !bus.Backbone():
		return nothing, nothing, nil
	case !bus.Backbone():
		return func() {
			s.stopBackbone()
			s.bbNumbers = old.b.Numbers()
			old.log.Info("nats backbone stopped")
		}, nothing, nil
	case old != nil && backboneKey(s.backboneConfig(bus, old.log)) == old.key:
		return func() {
			old.dumpnet.Store(bus.DumpNet)
			old.publishLocked(s)
			old.kickInterest()
		}, nothing, nil
	}
	n, err := s.openBackbone(bus)
	if err != nil {
		return nil, nil, err
	}
	return func() {
		if old != nil {
			// Its durable consumers stop before the new ones start
			// (those start on n's interest, kicked below): the two
			// share JetStream's consumers, as one server.
			old.b.StopConsuming()
			// And the new ones start where the old ones left off: what
			// the old delivered and JetStream brings again is a
			// duplicate, what comes ahead of what it had fetched waits.
			n.b.TakeSequences(old.b)
			// And it publishes on from the old one's numbers (else the
			// other servers drop its first messages as duplicates), with
			// the durable sends the old one had queued and not yet sent.
			n.b.TakeSends(old.b)
		} else {
			// A backbone again after a reload without one: the same
			// node id, so the same reason to number on.
			n.b.TakeNumbers(s.bbNumbers)
		}
		s.bbNumbers = nil
		n.publishLocked(s)
		s.bb.Store(n)
		n.kickInterest()
		if old != nil {
			old.close()
			n.log.Info("nats backbone reopened with the new settings")
		}
	}, n.close, nil
}

// publishLocked refreshes the channel snapshot. s.mu is held.
func (n *bbNode) publishLocked(s *Server) {
	m := maps.Clone(s.channels)
	n.chans.Store(&m)
}

// interestChanged is the channels' index hook: a listener came or went.
func (s *Server) interestChanged() {
	if n := s.bb.Load(); n != nil {
		n.kickInterest()
	}
}

// joinedListens reports whether an agent that joined ch, or a channel it
// propagates to, listens to anything: a durable channel starts consuming
// for no other (see interestLoop). It allocates nothing: the durable
// consumer asks it for each stored message (listening).
func joinedListens(ch *channel, st *settings) bool {
	if ch.anyMember(ch.index.Listens) {
		return true
	}
	for _, t := range st.targets {
		if t.anyMember(t.index.Listens) {
			return true
		}
	}
	return false
}

// listening is the backbone's Listening: whether the durable channel
// named has, at this moment, the interest interestLoop would give it (a
// joined agent that listens, or a queue group, on it or on a channel it
// propagates to). interestLoop tells the backbone after the fact; a
// message its consumer brings meanwhile, after the last listener left,
// would be acknowledged having reached no one.
func (n *bbNode) listening(channel string) bool {
	if !n.listens(channel) {
		return false
	}
	if h := n.listenHook.Load(); h != nil {
		(*h)(channel)
	}
	return true
}

// listens is listening without its test hook.
func (n *bbNode) listens(channel string) bool {
	chans := n.chans.Load()
	if chans == nil {
		return false
	}
	ch := (*chans)[channel]
	if ch == nil {
		return false
	}
	st := ch.settings.Load()
	if st == nil || !st.AcceptNet {
		return false
	}
	if joinedListens(ch, st) || !ch.queues.Empty() {
		return true
	}
	for _, t := range st.targets {
		if !t.queues.Empty() {
			return true
		}
	}
	return false
}

func (n *bbNode) kickInterest() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// interestLoop tells the backbone, after every change, what each channel's
// network messages can reach: the patterns of its agents and of the agents
// of the channels it propagates to, nothing if it refuses the network.
func (n *bbNode) interestLoop() {
	defer n.wg.Done()
	known := map[string]bool{}
	for {
		select {
		case <-n.stop:
			return
		case <-n.kick:
		}
		if h := n.interestHook.Load(); h != nil {
			(*h)()
		}
		chans := *n.chans.Load()
		for name := range known {
			if chans[name] == nil {
				n.b.SetInterest(name, nil, false)
				n.b.SetGroups(name, nil)
				delete(known, name)
			}
		}
		for name, ch := range chans {
			st := ch.settings.Load()
			var pats []string
			var groups []backbone.Group
			if st != nil && st.AcceptNet {
				pats = ch.index.Sources()
				groups = groupsOf(groups, ch)
				for _, t := range st.targets {
					pats = append(pats, t.index.Sources()...)
					groups = groupsOf(groups, t)
				}
				if st.Durable != nil {
					if !joinedListens(ch, st) {
						// Only a connection in its handshake listens
						// (to everything, until its wire is known):
						// no reason to consume. Started, the consumer
						// would deliver and acknowledge what is stored
						// into an outbox a native agent's preamble
						// discards (notLegacy), or to no one before
						// its Listen: lost.
						pats = pats[:0]
					}
					// Groups stay per server: the durable consumer
					// brings their messages with the others.
					for _, g := range groups {
						pats = append(pats, g.Pattern)
					}
					groups = nil
				}
			}
			n.b.SetInterest(name, pats, false)
			n.b.SetGroups(name, groups)
			known[name] = true
		}
		n.b.SetInterest(bbAnswers, []string{regexp.QuoteMeta(n.srv.nodeID)}, false)
	}
}
