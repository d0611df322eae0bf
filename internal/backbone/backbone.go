package backbone

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
)

// Config configures a Backbone.
type Config struct {
	// NATS is the nats block of the server's configuration. Required.
	NATS *config.NATS
	// Durable holds the channels whose messages go through JetStream.
	Durable map[string]config.Durable
	// NodeID is the server's node id, carried by every message.
	NodeID NodeID
	// NodeName names the server; it names the durable consumers, so it
	// must be stable across restarts and unique among the servers.
	NodeName string
	// MaxMessage is the largest frame sent or reassembled. Default 16 MiB.
	MaxMessage int
	// ReassemblyLimit bounds the time from a large message's first piece
	// to its last: past it, the unfinished message is dropped, counted as
	// lost (a publisher that died mid-message). Default 30 s.
	ReassemblyLimit time.Duration
	// Logger receives the backbone's logs. Default: discard.
	Logger *slog.Logger
	// DeliverGroup, if set, receives the messages NATS picks this server
	// for, for the queue groups given to SetGroups (a second connection
	// holds their queue subscriptions). Nil: no queue subscriptions.
	DeliverGroup DeliverGroupFunc
	// Listening, if set, reports whether a local agent listens to a
	// durable channel now, as SetInterest would say: its consumer sends
	// a message back to JetStream, for later, rather than deliver it to
	// no one and acknowledge it. It is called once per stored envelope,
	// from the channel's consumer. Nil: SetInterest alone says.
	Listening func(channel string) bool
}

// DeliverFunc receives messages from another server: node is the origin
// server and frames whole wire frames back to back, as its agents sent
// them: Msg frames of one channel (those of a batch, in order), or one
// Call or Answer frame. It is called from several goroutines (one per
// durable channel, one for the rest), never concurrently for one
// channel's durable messages; frames is valid only during the call.
// stream says when the frames are known to be one stream's (Stream).
// heard is how many bytes of frames, from the start, end with a frame
// that reached a local agent (queued for it, or dropped for its full
// outbox): a durable consumer that finds, after the call, that no local
// agent listens any more sends the frames after those back to JetStream
// rather than acknowledge them (a listener left between its check and
// the routing).
type DeliverFunc func(node NodeID, frames []byte, stream Stream) (heard int)

// Stream describes the frames of a delivery when they are all Msg frames
// whose payloads are equal from their channel through their event (one
// agent's stream of one event, as a batch mostly holds): the receiver,
// which walks a batch to check its frames' channel anyway, compares those
// bytes instead, and the server routes the frames as one without walking
// them again (S9's receiving server spent a third of its routing on that
// second walk). The zero Stream says nothing of the frames.
type Stream struct {
	Frames  int // how many; 0 if the frames are not known to be one stream
	Biggest int // the largest frame's size, length prefix included
}

// Backbone is a server's connection to NATS. Its methods are safe for
// concurrent use.
type Backbone struct {
	cfg     Config
	nodeHex [16]byte  // cfg.NodeID in hex, as receivers write it in Message.Node
	started time.Time // when New ran: a new durable consumer starts there
	log     *slog.Logger
	subj    subjects
	deliver DeliverFunc
	tls     *tls.Config
	nc      *nats.Conn
	js      jetstream.JetStream

	pub publisher
	in  interest
	pr  prober
	qs  queues

	durables map[string]*durable
	// carried is the last sequence number of each durable channel of a
	// Backbone this one replaced (TakeSends, TakeNumbers) that is not
	// durable here: a later one that has it durable again goes on from
	// it (Numbers). Set before b is used.
	carried map[string]uint64

	st counters

	lastErr atomic.Pointer[string]
	up      atomic.Bool // connected, as the handlers last said (no nats.go lock)
	// What Stats reports of the connection, kept from nats.go's handlers
	// and the publisher: nats.go's Status, ConnectedUrl and Buffered take
	// its connection's lock, which a write to a stalled server holds, and
	// a stats call must not wait for the network.
	state    atomic.Int32           // a connState
	url      atomic.Pointer[string] // the server connected to, redacted
	buffered atomic.Int64           // nats.go's buffered bytes, as last sampled
	// maxPayload is the NATS server's max_payload, as the last connection's
	// INFO gave it (0 before any): Send bounds its batches by it.
	maxPayload atomic.Int64
	closed     atomic.Bool
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	warn warner
}

// Errors returned by Send.
var (
	// ErrTooLarge: the frame exceeds Config.MaxMessage.
	ErrTooLarge = errors.New("backbone: message too large")
	// ErrDropped: the outbound buffer is full (NATS unreachable) or the
	// backbone is closed; the message is counted as dropped.
	ErrDropped = errors.New("backbone: message dropped")
)

// New starts a Backbone. It checks cfg (see Check) and returns at once: the
// connection is made in the background and retried forever; Stats and the
// log report failures, naming the URL.
func New(cfg Config, deliver DeliverFunc) (*Backbone, error) {
	tlsCfg, err := Check(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 16 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backbone{
		started:  time.Now(),
		cfg:      cfg,
		log:      log,
		subj:     newSubjects(cfg.NATS.Prefix, cfg.NATS.Cluster),
		deliver:  deliver,
		tls:      tlsCfg,
		durables: make(map[string]*durable),
	}
	hex.Encode(b.nodeHex[:], cfg.NodeID[:])
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.warn.log = log
	b.pub.init(b)
	b.in.init(b)
	b.pr.init(b)
	b.qs.init(b)
	for name, d := range cfg.Durable {
		b.durables[name] = newDurable(b, name, d)
	}
	opts, err := b.options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(cfg.NATS.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("backbone: nats %s: %w", redactedURLs(cfg.NATS.URLs), err)
	}
	b.nc = nc
	if err := b.pr.start(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("backbone: probe inbox: %w", err)
	}
	if b.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("backbone: jetstream: %w", err)
	}
	if cfg.DeliverGroup != nil {
		if err := b.qs.connect(strings.Join(cfg.NATS.URLs, ","), opts); err != nil {
			nc.Close()
			return nil, fmt.Errorf("backbone: nats %s: %w", redactedURLs(cfg.NATS.URLs), err)
		}
	}
	b.wg.Add(2)
	go b.in.receive()
	go b.pub.flushLoop()
	if b.qs.nc != nil {
		b.wg.Add(1)
		go b.qs.receive()
	}
	for _, d := range b.durables {
		d.start()
	}
	// nats.go calls the ConnectHandler for the first connection, now or
	// later.
	return b, nil
}

// options are the nats.go options for b's connection.
func (b *Backbone) options() ([]nats.Option, error) {
	n := b.cfg.NATS
	buf := n.OutBuffer
	if buf == 0 {
		buf = -1 // nats.go: no buffering while reconnecting
	}
	opts := []nats.Option{
		nats.Name(n.ConnectName(b.cfg.NodeName)),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(buf),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) { b.connected(nc) }),
		nats.ClosedHandler(func(*nats.Conn) { b.state.Store(stateClosed) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.st.reconnects.Add(1)
			b.connected(nc)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			b.up.Store(false)
			b.url.Store(nil)
			b.state.CompareAndSwap(stateConnected, stateReconnecting)
			if err != nil && !b.closed.Load() {
				b.setErr(fmt.Errorf("disconnected from %s: %w", b.urlOf(nc), err))
			}
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			b.state.CompareAndSwap(stateConnecting, stateReconnecting)
			b.setErr(fmt.Errorf("cannot connect to %s: %w", b.urlOf(nc), err))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.st.slow.Add(1)
				b.warn.soon(&b.st)
				return
			}
			b.setErr(fmt.Errorf("nats %s: %w", b.urlOf(nc), err))
		}),
	}
	switch {
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.NKey != "":
		o, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			return nil, fmt.Errorf("backbone: nats.nkey %s: %w", n.NKey, err)
		}
		opts = append(opts, o)
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	}
	if b.tls != nil {
		opts = append(opts, nats.Secure(b.tls))
	}
	return opts, nil
}

// urlOf names the server nc talks to or tries, without secrets.
func (b *Backbone) urlOf(nc *nats.Conn) string {
	if u := nc.ConnectedUrlRedacted(); u != "" {
		return u
	}
	return redactedURLs(b.cfg.NATS.URLs)
}

func redactedURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = config.RedactURL(u)
	}
	return strings.Join(out, ",")
}

// setErr records and logs (rate-limited) a connection problem.
func (b *Backbone) setErr(err error) {
	s := err.Error()
	b.lastErr.Store(&s)
	b.warn.errorSoon(s)
}

// connected runs on every (re)connection: the durable streams and
// consumers may need creating.
func (b *Backbone) connected(nc *nats.Conn) {
	if b.closed.Load() {
		return
	}
	b.maxPayload.Store(nc.MaxPayload())
	b.up.Store(true)
	b.lastErr.Store(nil)
	url := nc.ConnectedUrlRedacted()
	b.url.Store(&url)
	b.sampleBuffered(nc)
	b.state.Store(stateConnected)
	b.log.Info("nats: connected", "url", url, "max_payload", nc.MaxPayload())
	b.pr.reconnected()
	for _, d := range b.durables {
		d.kick()
	}
}

// StopConsuming stops the durable channels' consumers for good, waits
// until they have stopped (a handler that runs on, 5 s at most) and
// flushes their acknowledgements to NATS (1 s at most). What they had
// fetched and not delivered stays unacknowledged: JetStream brings it
// again, after the consumer's ack wait, to the next Backbone that
// consumes as this server (the same durable consumers). A server that
// replaces its Backbone calls it before the new one consumes: two at
// once would split one consumer's messages between two receivers (out
// of order), and one Backbone's acknowledgements cut off by its Close
// would have the other deliver those messages again. The channels
// still publish, and plain traffic is untouched.
func (b *Backbone) StopConsuming() {
	for _, d := range b.durables {
		d.halt()
	}
	b.waitIdle()
	if !b.closed.Load() && b.nc.IsConnected() {
		b.nc.FlushTimeout(time.Second)
	}
}

// TakeSequences gives each durable channel of b what from's consumer of
// the same channel knows of the publishers' sequence numbers (call it
// after from.StopConsuming, before b consumes): b's receiver then drops
// as a duplicate what from delivered, and holds as a gap what comes
// ahead of what from had fetched and not delivered, as a run of one
// Backbone does after an earlier run's. It takes the large messages from
// has in pieces too: their pieces so far were acknowledged and do not
// come again (the rest of one would come as the rest of a message whose
// sequence number is taken, acknowledged undelivered and uncounted), and
// one whose last piece was sent back waits for it (no listener). A
// channel whose handler on from still runs (past StopConsuming's bound)
// takes nothing: the caller is not held longer, and b starts afresh
// there, as a restarted server does.
func (b *Backbone) TakeSequences(from *Backbone) {
	for name, d := range b.durables {
		o := from.durables[name]
		if o == nil || !tryLockFor(&o.hmu, 100*time.Millisecond) {
			continue
		}
		peers := make(map[NodeID]*peerState, len(o.r.peers))
		for id, ps := range o.r.peers {
			peers[id] = &peerState{epoch: ps.epoch, next: maps.Clone(ps.next), gaps: make(map[string]time.Time)}
		}
		parts := o.r.parts.parts
		o.r.parts.parts = make(map[NodeID]*part)
		for _, p := range parts {
			o.r.parts.reserve(-cap(p.buf))
		}
		o.hmu.Unlock()
		d.hmu.Lock()
		d.r.peers = peers
		for id, p := range parts {
			d.r.parts.parts[id] = p
			d.r.parts.reserve(cap(p.buf))
		}
		d.hmu.Unlock()
	}
}

// tryLockFor locks mu if it can within d.
func tryLockFor(mu *sync.Mutex, d time.Duration) bool {
	for end := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		if mu.TryLock() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// waitIdle waits until no durable consumer runs (stop or halt called).
func (b *Backbone) waitIdle() {
	for _, d := range b.durables {
		<-d.idle
	}
}

// Close stops the backbone: it flushes what is buffered (for at most a
// second), closes the connection and waits for its goroutines. Calls
// after the first do nothing.
func (b *Backbone) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	for _, d := range b.durables {
		d.stop()
	}
	// The consumers' last handlers finish (5 s at most) while the
	// connection can still carry their acknowledgements: one cut off
	// would have the message delivered again by the next run.
	b.waitIdle()
	b.up.Store(false)
	b.state.Store(stateClosed)
	b.pub.close()
	// The publisher's last round, and each durable channel's publication
	// in flight, get their acknowledgements (1 s at most in all): a
	// durable one cut off counts as dropped though JetStream may have
	// stored it, and a reload's new Backbone stores what it took over
	// only after it (TakeSends).
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	waited := func(done <-chan struct{}) bool {
		select {
		case <-done:
			return true
		case <-wait.C:
			return false
		}
	}
	if waited(b.pub.done) {
		for _, d := range b.durables {
			if !waited(d.ended) {
				break
			}
		}
	}
	b.cancel()
	if b.nc.IsConnected() {
		b.nc.FlushTimeout(time.Second)
	}
	b.nc.Close()
	b.in.close()
	b.qs.close()
	b.wg.Wait()
	b.warn.flush(&b.st)
	return nil
}
