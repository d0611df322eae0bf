package netcluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/router"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// Agent is a member of one channel: it emits events and listens to them.
// All its methods may be called concurrently, and from handlers, except
// Close, which waits for the handlers to return.
type Agent struct {
	channel string
	id      string
	opts    options
	log     *slog.Logger
	where   string // the socket path, or "memory", for errors
	dial    func(ctx context.Context) (net.Conn, error)

	listeners *router.Index[*Listener]
	// memo is the dispatch goroutine's last match: a stream repeats its
	// event name, and one comparison is cheaper than a map lookup.
	memo       router.Memo[*Listener]
	nlisteners atomic.Int32 // how many; Emit skips matching when none
	q          *queue

	// The fields above are read for every message by the dispatcher
	// (memo, listeners) while Emit, on another core, writes mu and the
	// fields below it for every message: a cache line shared by the two
	// would move between the cores twice a message.
	_ [64]byte

	mu       sync.Mutex
	state    State
	closing  bool
	nc       net.Conn       // nil while disconnected
	writing  bool           // the writer holds a batch
	gaveUp   bool           // the connection ended for good (WithoutReconnect)
	out      []byte         // frames waiting for the writer
	wake     chan struct{}  // tells the writer out is not empty
	changed  notifier       // out drained, connection state changed
	patterns map[string]int // listener patterns → number of listeners
	maxFrame int
	nextTok  uint64
	pings    map[uint64]chan error
	local    recvAlloc // messages delivered in memory by Emit
	version  byte      // the protocol version of the connection; 0 before the first
	calls    map[uint64]*pendingCall
	nextCall uint64
	nextSID  uint32
	qls      atomic.Pointer[map[uint32]*Listener] // queue listeners by sid; copy on write under mu

	replays    []*pendingReplay // replays in flight, in the order asked (replay.go); under mu
	nextReplay uint64
	// Acknowledged messages (acks.go), under mu but seen.
	stream    uint32      // this agent's stream id, random
	seq       uint64      // the last number given to a message
	acked     uint64      // the last number the server acknowledged
	sent      []sentBatch // written batches with numbers above acked, oldest first
	sentBytes int
	free      [][]byte // emptied batch buffers, for reuse
	outLast   uint64   // the last number in out, 0 if none
	takenLast uint64   // the last number in the batch being written
	inflight  int      // the size of the batch being written
	kept      bool     // Wrote kept its batch (the writer's own)
	seen      origins  // the reader's: what was received, by origin
	// The send buffer's chunks (sendbuf.go), under mu.
	queued      []sentBatch // full buffers waiting for the writer, before out
	queuedBytes int
	chunks      [][]byte        // emptied chunks, for reuse
	head        wire.SeqMsgHead // the start of its SeqMsg frames (stream, channel, id): set by Connect
	// emitMemo is Emit's last match of its own listeners, as memo is the
	// dispatcher's: an agent emits the same event again and again. Under mu.
	emitMemo router.Memo[*Listener]

	ctx  context.Context // cancelled by Close: stops reconnecting
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// errConnLost fails what waited on a connection that ended.
var errConnLost = errors.New("netcluster: connection lost")

// Connect joins channel on the server and returns the connected Agent. It
// fails, naming the socket it tried, if no server answers: it does not
// retry the first connection. An option whose value cannot work fails it
// before it dials, with an error naming the option that matches
// ErrInvalidOption. ctx bounds the connection attempt only.
func Connect(ctx context.Context, channel string, opts ...Option) (*Agent, error) {
	if err := config.ValidChannelName(channel); err != nil {
		return nil, fmt.Errorf("netcluster: connect: %w", err)
	}
	a := &Agent{
		channel:  channel,
		opts:     defaultOptions(),
		state:    Disconnected,
		wake:     make(chan struct{}, 1),
		patterns: make(map[string]int),
		pings:    make(map[uint64]chan error),
		calls:    make(map[uint64]*pendingCall),
	}
	var sb [4]byte
	rand.Read(sb[:])
	a.stream = binary.BigEndian.Uint32(sb[:])
	a.ctx, a.stop = context.WithCancel(context.Background())
	for _, o := range opts {
		if o == nil {
			a.opts.invalid("a nil Option")
			continue
		}
		o(&a.opts)
	}
	if err := errors.Join(a.opts.errs...); err != nil {
		return nil, fmt.Errorf("netcluster: connect: %w", err)
	}
	a.log = a.opts.logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.id = a.opts.id
	if a.id == "" {
		var b [8]byte
		rand.Read(b[:])
		a.id = hex.EncodeToString(b[:])
	}
	a.head = wire.NewSeqMsgHead(a.stream, &wire.Msg{Channel: channel, Agent: a.id})
	switch {
	case a.opts.dialer != nil:
		a.where = "memory"
		a.dial = func(ctx context.Context) (net.Conn, error) { return a.opts.dialer(ctx, channel) }
	default:
		path := a.opts.socketPath
		if path == "" {
			dir := a.opts.socketDir
			if dir == "" {
				dir = new(config.Config).ResolveSocketDir()
			}
			path = transport.SocketPath(dir, channel)
		}
		a.where = path
		a.dial = func(ctx context.Context) (net.Conn, error) { return transport.Dial(ctx, path) }
	}
	a.listeners = router.NewIndex[*Listener]()
	a.q = newQueue(a.opts.queueSize)

	nc, rd, w, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.attach(nc, w)
	a.mu.Unlock()
	a.wg.Add(2)
	go a.dispatch()
	go a.supervise(nc, rd)
	return a, nil
}

// ID returns the agent's id.
func (a *Agent) ID() string { return a.id }

// Channel returns the agent's channel.
func (a *Agent) Channel() string { return a.channel }

// State returns the connection's state.
func (a *Agent) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// On adds a listener: handler is called for every message whose event name
// pattern matches. The pattern is RE2 syntax matched against the whole
// name (`log|audit` matches "log" and "audit", not "logs"); an invalid
// pattern returns an error. A message from the server may arrive as soon as
// the server has the listener: call Flush to wait for that. Options:
// WithReplay first passes the handler the durable channel's recent
// history.
func (a *Agent) On(pattern string, handler Handler, opts ...ListenOption) (*Listener, error) {
	return a.addListener(pattern, handler, false, opts)
}

// Once is like On, but the listener is removed before its first call.
func (a *Agent) Once(pattern string, handler Handler, opts ...ListenOption) (*Listener, error) {
	return a.addListener(pattern, handler, true, opts)
}

func (a *Agent) addListener(pattern string, h Handler, once bool, opts []ListenOption) (*Listener, error) {
	if h == nil {
		return nil, errors.New("netcluster: nil handler")
	}
	if len(pattern) > wire.MaxPatternLen {
		return nil, fmt.Errorf("netcluster: listener pattern of %d bytes; the limit is %d", len(pattern), wire.MaxPatternLen)
	}
	if _, err := router.Compile(pattern); err != nil {
		return nil, err
	}
	var lo listenOptions
	for _, o := range opts {
		if err := o(&lo); err != nil {
			return nil, fmt.Errorf("netcluster: listener %q: %w", pattern, err)
		}
	}
	l := &Listener{agent: a, pattern: pattern, handler: h, once: once, replaying: lo.replay != nil}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return nil, ErrClosed
	}
	if lo.replay != nil && a.version != 0 && a.version < wire.VersionCalls {
		return nil, fmt.Errorf("netcluster: listener %q with replay: %w (it speaks protocol version %d)", pattern, ErrUnsupported, a.version)
	}
	if err := a.listeners.Add(l, pattern); err != nil {
		return nil, err
	}
	a.nlisteners.Add(1)
	a.patterns[pattern]++
	if a.patterns[pattern] == 1 && a.nc != nil {
		a.queueFrame(wire.AppendListen(a.out, wire.TypeListen, pattern))
	}
	if lo.replay != nil {
		// After the Listen: the server has the listener before it reads
		// the stream (see WithReplay).
		r := *lo.replay
		r.Pattern = pattern
		a.startReplayLocked(&pendingReplay{req: r, l: l})
	}
	return l, nil
}

func (a *Agent) removeListener(l *Listener) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.group != "" {
		a.removeQueueListenerLocked(l)
		return
	}
	a.listeners.Remove(l, l.pattern)
	a.nlisteners.Add(-1)
	a.patterns[l.pattern]--
	if a.patterns[l.pattern] > 0 {
		return
	}
	delete(a.patterns, l.pattern)
	if a.nc != nil && !a.closing {
		a.queueFrame(wire.AppendListen(a.out, wire.TypeUnlisten, l.pattern))
	}
}

// queueFrame sets out to buf (out with frames appended) and wakes the
// writer. Call with mu held.
func (a *Agent) queueFrame(buf []byte) {
	was := len(a.out)
	a.out = buf
	if was == 0 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// Emit sends an event whose data is v encoded as JSON. The agent's own
// matching listeners receive it in memory; the server routes it to the
// other agents. Emit returns once the message is queued for the server:
// it waits (bounded by ctx) while the send buffer is full and the agent is
// connected, and fails with ErrBufferFull while it is disconnected.
func (a *Agent) Emit(ctx context.Context, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("netcluster: emit %q: %w", event, err)
	}
	return a.emit(ctx, event, data, wire.FlagJSON, false)
}

// EmitRaw is like Emit, but sends data as it is, not as JSON. Agents of the
// legacy JSON wire receive it as a JSON string.
func (a *Agent) EmitRaw(ctx context.Context, event string, data []byte) error {
	return a.emit(ctx, event, data, 0, true)
}

func (a *Agent) emit(ctx context.Context, event string, data []byte, flags byte, copyData bool) error {
	if event == "" || len(event) > wire.MaxEventLen {
		return fmt.Errorf("%w: %d bytes; want 1 to %d", ErrInvalidEvent, len(event), wire.MaxEventLen)
	}
	a.mu.Lock()
	for {
		size := a.head.Size(event, data) // a SeqMsg's; a Msg's is less
		if a.version < wire.VersionAcks {
			size -= wire.SeqMsgOverhead
		}
		if a.closing {
			a.mu.Unlock()
			return ErrClosed
		}
		if size-wire.LenSize > a.maxFrame {
			a.mu.Unlock()
			return fmt.Errorf("%w: event %q is %d bytes; the server accepts at most %d", ErrTooLarge, event, size-wire.LenSize, a.maxFrame)
		}
		if a.gaveUp {
			a.mu.Unlock()
			return fmt.Errorf("%w: the connection to %s ended and WithoutReconnect is set", ErrNotConnected, a.where)
		}
		held := a.outLen() + a.inflight + a.sentBytes
		if held == 0 || held+size <= a.opts.bufferSize {
			break
		}
		if a.nc == nil {
			a.mu.Unlock()
			return fmt.Errorf("%w: %d bytes waiting for %s", ErrBufferFull, held, a.where)
		}
		ch := a.changed.wait()
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("netcluster: emit %q: %w", event, ctx.Err())
		}
		a.mu.Lock()
	}
	a.roomOut(a.head.Size(event, data))
	if a.version >= wire.VersionAcks {
		a.seq++
		a.outLast = a.seq
		a.queueFrame(a.head.Append(a.out, a.seq, flags, event, data))
	} else {
		a.queueFrame(wire.AppendMsg(a.out, &wire.Msg{Flags: flags, Channel: a.channel, Agent: a.id, Event: event, Data: data}))
	}
	if a.nlisteners.Load() == 0 || len(a.listeners.MatchMemo(unsafeBytes(event), &a.emitMemo)) == 0 {
		a.mu.Unlock()
		return nil
	}
	// In memory to the agent's own listeners, from slabs like received
	// messages (a.local is guarded by mu).
	msg := a.local.message()
	if copyData {
		data = a.local.bytes(data)
	}
	// Field by field into the zeroed slot, as the reader does (alloc.go):
	// a literal is built in a copy and written whole, with a write
	// barrier for each of its pointers, nil ones included.
	msg.Event = a.local.field(fieldEvent, unsafeBytes(event))
	msg.Data = data
	msg.JSON = flags&wire.FlagJSON != 0
	msg.Channel = a.channel
	msg.Agent = a.id
	msg.Local = true
	a.mu.Unlock()
	a.q.push(false, item{msg: msg})
	return nil
}

// Flush waits until the server has received and acted on everything this
// agent sent before it, listeners included, or until ctx ends. While the
// agent is reconnecting it waits for the connection.
func (a *Agent) Flush(ctx context.Context) error {
	defer a.q.hold()()
	for {
		a.mu.Lock()
		if a.closing {
			a.mu.Unlock()
			return ErrClosed
		}
		if a.gaveUp {
			a.mu.Unlock()
			return fmt.Errorf("netcluster: flush: %w: the connection to %s ended and WithoutReconnect is set", ErrNotConnected, a.where)
		}
		if a.nc == nil {
			ch := a.changed.wait()
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return fmt.Errorf("netcluster: flush: %w", ctx.Err())
			}
		}
		a.nextTok++
		tok := a.nextTok
		done := make(chan error, 1)
		a.pings[tok] = done
		a.queueFrame(wire.AppendU64(a.out, wire.TypePing, tok))
		a.mu.Unlock()
		select {
		case err := <-done:
			if errors.Is(err, errConnLost) {
				continue
			}
			return err
		case <-ctx.Done():
			a.mu.Lock()
			delete(a.pings, tok)
			a.mu.Unlock()
			return fmt.Errorf("netcluster: flush: %w", ctx.Err())
		}
	}
}

// Close sends what is still buffered (waiting for a reconnection if need
// be, for messages, calls and answers: not for what only a connection
// that ended needed) and, while connected to a server that acknowledges messages
// (protocol version 3), waits for the acknowledgement of what it sent,
// until ctx ends; then it closes the connection and stops the agent's
// goroutines. No handler runs after Close returns; messages received but
// not yet handled are discarded. If messages were left unsent, or sent to
// a connection that ended before acknowledging them, Close says how many
// bytes. Additional calls return ErrClosed.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return ErrClosed
	}
	a.closing = true
	a.changed.broadcast()
	var err error
	for a.outLen() > 0 || a.writing || a.sentBytes > 0 {
		if a.nc == nil && !a.writing && !a.outResendable() {
			// What is left of out, if anything, was the ended
			// connection's own (its Stream frame, listens, a Pong):
			// a reconnection makes those anew, so it is not waited for.
			if a.sentBytes > 0 {
				err = fmt.Errorf("netcluster: close: %d bytes of messages unacknowledged: %w", a.sentBytes, ErrNotConnected)
			}
			break
		}
		if a.nc == nil && a.gaveUp {
			err = fmt.Errorf("netcluster: close: %d bytes of messages unsent or unacknowledged: %w", a.outLen()+a.sentBytes, ErrNotConnected)
			break
		}
		ch := a.changed.wait()
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		a.mu.Lock()
		if err != nil {
			if n := a.outLen() + a.sentBytes; n > 0 {
				err = fmt.Errorf("netcluster: close: %d bytes of messages unsent or unacknowledged: %w", n, err)
			}
			break
		}
	}
	a.state = Closed
	a.failCallsLocked(ErrClosed)
	nc := a.nc
	a.mu.Unlock()
	a.stop()
	if nc != nil {
		nc.Close()
	}
	a.q.close()
	a.wg.Wait()
	if a.opts.onState != nil {
		a.opts.onState(Closed, nil)
	}
	return err
}
