package netbus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Send and New.
var (
	ErrClosed        = errors.New("netbus: closed")
	ErrTooLarge      = errors.New("netbus: message too large")
	ErrQueueFull     = errors.New("netbus: send queue full")
	ErrChannelName   = errors.New("netbus: channel name longer than 255 bytes")
	ErrReservedGroup = errors.New("netbus: reserved multicast group")
)

// DeliverFunc receives a message from another node. It is called from a
// single goroutine, never concurrently, in send order per peer. frame is
// valid only during the call. It must not call Close.
type DeliverFunc func(from Peer, channel string, frame []byte)

// Bus sends frames to the other nodes of a group and delivers theirs,
// reliably and in order per sending node. All methods may be called
// concurrently. Close stops it; no DeliverFunc call starts after Close
// returns.
type Bus struct {
	cfg     Config
	tr      PacketTransport
	deliver DeliverFunc
	log     *slog.Logger
	id      NodeID
	epoch   uint64
	started int64                   // wall clock at New, ns: timed heartbeats must be later
	keys    atomic.Pointer[keyring] // nil pointer inside: plaintext

	// Send side.
	qmu       sync.Mutex
	q         *sendQueue
	spare     *sendQueue
	room      chan struct{} // closed when q is emptied; nil while no SendWait waits
	sendSig   chan struct{}
	ackSig    chan struct{} // an ack arrived: the window may have opened
	smu       sync.Mutex    // guards the fields below
	seq       uint64        // last data sequence assigned
	nextMsg   uint64        // number of the next message
	wseq      uint64        // last data sequence written to the transport
	wmsg      uint64        // number of the next message after wseq
	hist      history
	ackers    map[NodeID]*acker // receivers' acks, for the window
	cwnd      int               // window, datagrams
	cwndCutAt time.Time
	freeFloor uint64    // the window's floor while no receiver acks
	freeAt    time.Time // when freeFloor last moved
	ctrlSeq   atomic.Uint64
	sent      sendCounters

	// Receive side, owned by the loop goroutine; mu guards it against Stats.
	mu           sync.Mutex
	peers        map[NodeID]*peer
	gone         map[NodeID]*goneSession // sessions of forgotten peers, see forget
	rejected     [numReasons]uint64
	rejLogged    [numReasons]uint64 // rejected as of the last report
	rejLogAt     time.Time
	echoes       uint64
	ocache       openCache // subkeys of the sessions heard (crypto_session.go)
	evicted      uint64    // peers whose state was dropped for MaxMemory
	env          streamEnv // what the peers' streams share, and their deliveries
	wout         []Packet
	lastBeat     time.Time
	unprovenNaks int // NAKs this tick may still send to unproven peers
	// handed is how many messages of env.out deliver has returned from:
	// Stats counts a message delivered only then.
	handed atomic.Int64
	// lastWake is when the loop last woke (a batch or a tick), stalled
	// the time it has not run beyond a few ticks since New (deliver
	// blocking, the process starved): a peer is not silent while we were
	// not listening (see silence).
	lastWake time.Time
	stalled  time.Duration

	in   chan *rbatch
	free chan *rbatch

	closeOnce sync.Once
	closed    atomic.Bool
	quitW     chan struct{} // stops the writer
	quit      chan struct{} // stops the reader and the loop
	wgW       sync.WaitGroup
	wg        sync.WaitGroup
}

type sendCounters struct {
	messages, fragmented, datagrams, bytes, queueFull         atomic.Uint64
	retransmits, naksReceived, unavailable, beats, writeError atomic.Uint64
	windowFull, windowCuts                                    atomic.Uint64
}

const readBatch = 32 // datagrams per ReadBatch

type rbatch struct {
	ps    []Packet
	n     int
	buf   []byte // the copies' buffers (a transport that lends has none)
	lease Lease  // what the transport lent ps[:n] from, released once handled
}

// New starts a Bus. deliver receives every message from other nodes. When
// cfg.Transport is nil it opens the UDP transport. On error, everything
// New opened is closed again.
func New(cfg Config, deliver DeliverFunc) (*Bus, error) {
	if deliver == nil {
		return nil, errors.New("netbus: nil deliver func")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	kr, err := newKeyring(cfg.Keys)
	if err != nil {
		return nil, err
	}
	cfg.Keys = slices.Clone(cfg.Keys)
	cfg.Peers = slices.Clone(cfg.Peers)
	b := &Bus{
		cfg:     cfg,
		deliver: deliver,
		log:     cfg.Logger,
		id:      cfg.NodeID,
		epoch:   nextEpoch(),
		started: time.Now().UnixNano(),
		q:       &sendQueue{},
		spare:   &sendQueue{},
		sendSig: make(chan struct{}, 1),
		ackSig:  make(chan struct{}, 1),
		ackers:  map[NodeID]*acker{},
		cwnd:    cwndInit,
		peers:   map[NodeID]*peer{},
		gone:    map[NodeID]*goneSession{},
		in:      make(chan *rbatch, 2),
		free:    make(chan *rbatch, 4),
		quitW:   make(chan struct{}),
		quit:    make(chan struct{}),
	}
	b.env = streamEnv{cfg: &b.cfg, epoch: b.epoch, log: b.log, chans: map[string]string{}, all: b.streams, evict: b.evict}
	if b.id == (NodeID{}) {
		if _, err := rand.Read(b.id[:]); err != nil {
			return nil, fmt.Errorf("netbus: node id: %w", err)
		}
	}
	b.keys.Store(kr.forSession(b.id, b.epoch))
	b.hist.init()
	b.tr = cfg.Transport
	if b.tr == nil {
		t, err := ListenUDP(UDPConfig{
			Group: cfg.Group, Port: cfg.Port, Interface: cfg.Interface, TTL: cfg.TTL,
			Peers: cfg.Peers, UnicastPort: cfg.UnicastPort, ReadSize: recvSize(cfg.Payload),
			NoLoopback: cfg.NoLoopback, NoOffload: cfg.NoOffload, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		b.tr = t
	}
	rs := recvSize(cfg.Payload)
	for range cap(b.free) {
		rb := &rbatch{ps: make([]Packet, readBatch)}
		if _, ok := b.tr.(leaser); !ok {
			rb.buf = make([]byte, readBatch*rs)
		}
		b.free <- rb
	}
	// The first datagram peers see from us is a heartbeat with LastSeq 0,
	// so they follow our stream from sequence 1.
	b.mu.Lock()
	b.queueBeat(netip.AddrPort{}, time.Now())
	b.mu.Unlock()
	b.flushWrites()
	b.wgW.Add(1)
	go b.writeLoop()
	b.wg.Add(2)
	go b.readLoop()
	go b.mainLoop()
	attrs := []any{"node", b.id, "name", cfg.NodeName, "addr", b.tr.LocalAddr(), "sealed", kr != nil}
	if ut, ok := b.tr.(*UDPTransport); ok {
		gso, gro := ut.Offload()
		attrs = append(attrs, "gso", gso, "gro", gro)
		if len(cfg.Peers) == 0 {
			attrs = append(attrs, "loopback", ut.MulticastLoopback())
		}
	}
	b.log.Info("netbus: started", attrs...)
	return b, nil
}

func recvSize(payload int) int { return max(payload, 9000) }

// NodeID returns this process's node id.
func (b *Bus) NodeID() NodeID { return b.id }

// LocalAddr returns the unicast address peers reply to.
func (b *Bus) LocalAddr() netip.AddrPort { return b.tr.LocalAddr() }

// SetKeys replaces the keyring (keys[0] seals from now on; all open).
// Datagrams already sent stay sealed with the key they were sealed with.
// An empty keys switches to plaintext.
func (b *Bus) SetKeys(keys []Key) error {
	kr, err := newKeyring(keys)
	if err != nil {
		return err
	}
	b.keys.Store(kr.forSession(b.id, b.epoch))
	return nil
}

// Close flushes queued messages, sends a last heartbeat (so peers can
// detect lost tail datagrams), closes the transport and waits for the
// Bus's goroutines. Further calls return nil.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.qmu.Lock()
		b.closed.Store(true)
		b.wakeSendersLocked()
		b.qmu.Unlock()
		close(b.quitW)
		b.wgW.Wait()
		b.mu.Lock()
		b.queueBeat(netip.AddrPort{}, time.Now())
		b.mu.Unlock()
		b.flushWrites()
		close(b.quit)
		err = b.tr.Close()
		b.wg.Wait()
	})
	return err
}

// readLoop reads datagram batches and hands them to the loop.
func (b *Bus) readLoop() {
	defer b.wg.Done()
	for {
		var rb *rbatch
		select {
		case rb = <-b.free:
		case <-b.quit:
			return
		}
		var n int
		var err error
		if lt, ok := b.tr.(leaser); ok {
			// No copy: the datagrams stay in the transport's buffers
			// until the loop has handled them.
			n, rb.lease, err = lt.ReadLease(rb.ps)
		} else {
			rs := len(rb.buf) / len(rb.ps)
			for i := range rb.ps {
				rb.ps[i] = Packet{Data: rb.buf[i*rs : (i+1)*rs : (i+1)*rs]}
			}
			n, err = b.tr.ReadBatch(rb.ps)
		}
		if err != nil {
			select {
			case <-b.quit:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				b.log.Error("netbus: transport closed under the bus", "err", err)
				return
			}
			b.log.Warn("netbus: read", "err", err)
			if rb.lease != nil {
				rb.lease.Release()
				rb.lease = nil
			}
			b.free <- rb
			select {
			case <-time.After(10 * time.Millisecond):
			case <-b.quit:
				return
			}
			continue
		}
		rb.n = n
		select {
		case b.in <- rb:
		case <-b.quit:
			return
		}
	}
}

// mainLoop owns the receive state: it handles datagram batches and ticks,
// and is the only caller of deliver.
func (b *Bus) mainLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case rb := <-b.in:
			now := time.Now()
			b.mu.Lock()
			b.wake(now)
			for _, p := range rb.ps[:rb.n] {
				b.handlePacket(p.Data, p.Addr, now)
			}
			b.nakUrgent(now)
			b.mu.Unlock()
			b.flushOut() // deliveries point into the batch: before it goes
			if rb.lease != nil {
				rb.lease.Release()
				rb.lease = nil
			}
			clear(rb.ps[:rb.n])
			b.free <- rb
		case now := <-t.C:
			b.mu.Lock()
			b.wake(now)
			b.tick(now)
			b.mu.Unlock()
			b.flushOut()
		case <-b.quit:
			return
		}
	}
}

// wake accounts a gap of more than a few ticks since the loop last woke
// as stalled time. mu is held.
func (b *Bus) wake(now time.Time) {
	if !b.lastWake.IsZero() {
		if gap := now.Sub(b.lastWake); gap > 4*b.cfg.Tick {
			b.stalled += gap - b.cfg.Tick
		}
	}
	b.lastWake = now
}

// flushOut delivers collected messages and writes collected datagrams,
// without holding mu. Only the loop goroutine calls it (it alone appends
// to env.out, under mu).
func (b *Bus) flushOut() {
	if out := b.env.out; len(out) > 0 {
		for i := range out {
			d := &out[i]
			b.deliver(d.from, d.ch, d.frame)
			b.handed.Store(int64(i + 1))
		}
		b.mu.Lock()
		clear(out)
		b.env.out = out[:0]
		b.handed.Store(0)
		b.mu.Unlock()
	}
	b.flushWrites()
}

// flushWrites writes the datagrams queued in wout. Callers: the loop, and
// New/Close before/after the loop runs.
func (b *Bus) flushWrites() {
	b.mu.Lock()
	w := b.wout
	b.wout = nil
	b.mu.Unlock()
	if len(w) > 0 {
		b.write(w)
	}
}

// writeChunk is the most datagrams handed to the transport at once: one
// sendmmsg of up to that many (or, with GSO, of a few runs of up to 64).
const writeChunk = 256

func (b *Bus) write(ps []Packet) {
	for len(ps) > 0 {
		n := min(len(ps), writeChunk)
		b.writeBatch(ps[:n])
		ps = ps[n:]
	}
}

// writeBatch hands ps to the transport; false (counted, logged) if it
// failed.
func (b *Bus) writeBatch(ps []Packet) bool {
	if err := b.tr.WriteBatch(ps); err != nil {
		b.sent.writeError.Add(1)
		b.log.Warn("netbus: write", "err", err)
		return false
	}
	return true
}

// Stats returns a snapshot of the counters.
func (b *Bus) Stats() Stats {
	s := Stats{
		Node: b.id, Name: b.cfg.NodeName, Epoch: b.epoch, Addr: b.tr.LocalAddr(),
		Rejected: map[Reason]uint64{},
		Sent: SendStats{
			Messages: b.sent.messages.Load(), Fragmented: b.sent.fragmented.Load(),
			Datagrams: b.sent.datagrams.Load(), Bytes: b.sent.bytes.Load(),
			QueueFull: b.sent.queueFull.Load(), Retransmits: b.sent.retransmits.Load(),
			NaksReceived: b.sent.naksReceived.Load(), Unavailable: b.sent.unavailable.Load(),
			Heartbeats: b.sent.beats.Load(), WriteErrors: b.sent.writeError.Load(),
			WindowWaits: b.sent.windowFull.Load(), WindowCuts: b.sent.windowCuts.Load(),
		},
	}
	b.smu.Lock()
	s.Sent.Window = b.cwnd
	b.smu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Echoes = b.echoes
	s.Memory, s.MemoryLimit, s.Evicted = b.env.mem(), b.cfg.MaxMemory, b.evicted
	for r, n := range b.rejected {
		if n > 0 {
			s.Rejected[Reason(r)] = n
		}
	}
	// Messages the streams counted but deliver has not returned from yet
	// are not delivered yet.
	var queued map[NodeID]uint64
	if h := int(b.handed.Load()); h < len(b.env.out) {
		queued = map[NodeID]uint64{}
		for _, d := range b.env.out[h:] {
			queued[d.from.ID]++
		}
	}
	for _, p := range b.peers {
		ps := p.st
		ps.Peer = p.pub
		ps.Epoch, ps.LastSeen = p.epoch, p.lastSeen
		c := p.carry
		if p.s != nil {
			ps.HighestSeq, ps.NextSeq, ps.Pending = p.s.top, p.s.next, p.s.pendBytes
			c = p.s.st
		}
		ps.Delivered, ps.Reordered, ps.Recovered, ps.Late = c.Delivered-min(c.Delivered, queued[p.pub.ID]), c.Reordered, c.Recovered, c.Late
		ps.LostDatagrams, ps.LostMessages = c.LostDatagrams, c.LostMessages
		s.Peers = append(s.Peers, ps)
	}
	slices.SortFunc(s.Peers, func(x, y PeerStats) int { return slices.Compare(x.ID[:], y.ID[:]) })
	return s
}

// lastEpoch is the epoch of the latest Bus of this process. It is the one
// piece of package state: a server rebinding reuses its node id, and the
// AEAD nonce is (node id, epoch, sequence), so two Buses of one process
// must never share an epoch, even where the wall clock is coarse (Windows)
// or steps back.
var lastEpoch atomic.Uint64

// nextEpoch returns a new session epoch: the time in nanoseconds, or one
// more than the previous epoch if that is not later.
func nextEpoch() uint64 {
	for {
		prev := lastEpoch.Load()
		e := max(uint64(max(time.Now().UnixNano(), 1)), prev+1)
		if lastEpoch.CompareAndSwap(prev, e) {
			return e
		}
	}
}
