package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

const (
	readBufSize      = 32 << 10 // per connection
	handshakeTimeout = 10 * time.Second
	legacyWait       = 2 * time.Second // silence that marks a listening legacy agent
	lingerTimeout    = time.Second     // to write a last error frame
	idleKeptBuf      = 16 << 10        // a writer idle for idleRelease keeps no larger buffer
	idleRelease      = 1 * time.Second // see idleKeptBuf
	maxPatterns      = 10000           // listener patterns per agent
)

// conn is one agent's connection.
type conn struct {
	ch    *channel
	srv   *Server
	nc    net.Conn
	since time.Time
	pid   int // from SO_PEERCRED, or the agent's hello; -1 if unknown
	uid   int // from SO_PEERCRED; -1 if unknown

	// Set by the handshake, then read-only.
	id       string
	idb      []byte
	legacy   bool
	hellopid int
	rd       *wire.Reader // native connections

	stallTimer *time.Timer // used by this connection's reader in stall

	// The outbox: frames queued for the agent, written by writeLoop.
	omu      sync.Mutex
	obuf     []byte
	obig     int           // size of a frame larger than the bound alone at the head of obuf
	lscratch []byte        // legacy agents: the envelope being delivered
	room     chan struct{} // closed when the writer takes obuf; senders stall on it
	stalled  bool          // stalls used up stallBudget; none until the writer takes obuf
	stalls   time.Duration // stall time that ran out since the writer last took obuf
	closing  bool          // no more deliveries; writeLoop flushes then closes
	pending  uint64        // drops not yet reported to the agent
	wake     chan struct{}

	done       chan struct{} // closed by close
	closeOnce  sync.Once
	writerDone chan struct{}

	msgsIn   atomic.Uint64
	msgsOut  atomic.Uint64
	bytesOut atomic.Uint64
	dropped  atomic.Uint64
}

func newConn(ch *channel, nc net.Conn) *conn {
	c := &conn{
		ch:         ch,
		srv:        ch.srv,
		nc:         nc,
		since:      time.Now(),
		pid:        -1,
		uid:        -1,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if pid, uid, ok := transport.PeerCred(nc); ok {
		c.pid, c.uid = pid, uid
	}
	return c
}

// run serves the connection until it ends.
func (c *conn) run() {
	br := bufio.NewReaderSize(c.nc, readBufSize)
	err := c.handshake(br)
	if err == nil {
		go c.writeLoop()
		if c.legacy {
			err = c.readLegacy(br)
		} else {
			err = c.readNative()
		}
		c.ch.leave(c)
		c.linger()
	} else {
		c.close()
	}
	if err != nil && !isClosedErr(err) {
		c.srv.log.Info("agent disconnected", "channel", c.ch.name, "agent", c.id, "err", err)
	} else if c.id != "" {
		c.srv.log.Debug("agent disconnected", "channel", c.ch.name, "agent", c.id)
	}
}

// protoError is a problem with what the agent sent: it is reported to the
// agent in an Error frame before the connection closes.
type protoError struct {
	code uint16
	text string
}

func (e *protoError) Error() string { return e.text }

func perr(code uint16, format string, args ...any) error {
	return &protoError{code: code, text: fmt.Sprintf(format, args...)}
}

var (
	errShutdown = &protoError{code: wire.CodeShutdown, text: "server shutting down"}
	agentIDRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// handshake tells the two wires apart by the first byte and, for the
// native one, reads the preamble and Hello and answers with Welcome.
func (c *conn) handshake(br *bufio.Reader) error {
	defer c.nc.SetReadDeadline(time.Time{})
	// A native agent writes its preamble at once; an agent of the Node
	// original writes nothing until it emits. One silent for legacyWait
	// is taken for a legacy agent that only listens.
	c.nc.SetReadDeadline(time.Now().Add(legacyWait))
	first, err := br.Peek(1)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.joinLegacy()
	}
	if err != nil {
		return err
	}
	if wire.IsLegacyStart(first[0]) {
		return c.joinLegacy()
	}
	c.nc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	pre, err := br.Peek(len(wire.Preamble))
	if err != nil {
		return err
	}
	if string(pre) != wire.Preamble {
		// Neither wire: say so in plain text, which any client can show.
		c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
		fmt.Fprintf(c.nc, "netcluster: unknown protocol (first bytes %q); expected the native preamble or a legacy JSON envelope\n", pre)
		return fmt.Errorf("unknown protocol, first bytes %q", pre)
	}
	br.Discard(len(wire.Preamble))
	c.rd = wire.NewReader(br, c.srv.limits.Load().maxFrame)
	f, err := c.rd.Next()
	if err != nil {
		return c.refuse(frameErr(err))
	}
	if f.Type != wire.TypeHello {
		return c.refuse(perr(wire.CodeProtocol, "expected hello, got %s", wire.TypeName(f.Type)))
	}
	h, err := wire.ParseHello(f.Payload)
	switch {
	case err != nil:
		return c.refuse(perr(wire.CodeMalformed, "%v", err))
	case h.Version != wire.Version:
		return c.refuse(perr(wire.CodeVersion, "protocol version %d is not supported; this server speaks %d", h.Version, wire.Version))
	case h.Channel != c.ch.name:
		return c.refuse(perr(wire.CodeBadHello, "this socket serves channel %q, hello names %q", c.ch.name, h.Channel))
	case !agentIDRE.MatchString(h.AgentID):
		return c.refuse(perr(wire.CodeBadHello, "invalid agent id %q: want 1 to 64 letters, digits, '.', '_' or '-'", h.AgentID))
	}
	c.id, c.idb, c.hellopid = h.AgentID, []byte(h.AgentID), int(h.PID)
	if c.pid < 0 {
		c.pid = c.hellopid
	}
	c.obuf = wire.AppendWelcome(c.obuf, wire.Welcome{
		Version:  wire.Version,
		MaxFrame: uint32(c.srv.limits.Load().maxFrame),
		ServerID: c.srv.nodeID,
	})
	return c.join()
}

func (c *conn) joinLegacy() error {
	c.legacy = true
	c.id = fmt.Sprintf("legacy-%d", c.srv.nextID.Add(1))
	c.idb = []byte(c.id)
	// A legacy agent cannot say what it listens to: it gets everything
	// routed to its channel, as in the original.
	c.ch.index.Add(c, ".*")
	return c.join()
}

func (c *conn) join() error {
	replaced, ok := c.ch.join(c)
	if !ok {
		c.ch.index.RemoveAll(c)
		return c.refuse(perr(wire.CodeChannelGone, "channel %q is closing", c.ch.name))
	}
	if replaced != nil {
		c.srv.log.Info("agent reconnected; closing its old connection", "channel", c.ch.name, "agent", c.id)
		replaced.close()
	}
	c.srv.log.Debug("agent connected", "channel", c.ch.name, "agent", c.id, "legacy", c.legacy, "pid", c.pid)
	return nil
}

// refuse writes an error to an agent that never joined, then fails.
func (c *conn) refuse(err error) error {
	var pe *protoError
	if errors.As(err, &pe) {
		c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
		c.nc.Write(wire.AppendError(nil, wire.Error{Code: pe.code, Text: pe.text}))
	}
	return err
}

// frameErr turns a frame reader error into what the agent is told.
func frameErr(err error) error {
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		return perr(wire.CodeTooLarge, "%v", err)
	case errors.Is(err, wire.ErrEmpty):
		return perr(wire.CodeMalformed, "%v", err)
	}
	return err
}

// readNative reads and acts on native frames until the connection ends.
func (c *conn) readNative() error {
	patterns := 0
	for {
		f, err := c.rd.Next()
		if err != nil {
			return c.fail(frameErr(err))
		}
		switch f.Type {
		case wire.TypeMsg:
			v, err := wire.ParseMsg(f.Payload)
			switch {
			case err != nil:
				return c.fail(perr(wire.CodeMalformed, "%v", err))
			case !bytes.Equal(v.Channel, []byte(c.ch.name)) || !bytes.Equal(v.Agent, c.idb) || len(v.Node) != 0:
				return c.fail(perr(wire.CodeOrigin, "msg origin %q/%q/%q does not match this connection (channel %q, agent %q)",
					v.Node, v.Channel, v.Agent, c.ch.name, c.id))
			case len(v.Event) == 0:
				return c.fail(perr(wire.CodeMalformed, "msg: empty event name"))
			}
			c.msgsIn.Add(1)
			c.ch.route(c, f.Raw, &v)
		case wire.TypeListen:
			p, err := wire.ParseListen(f.Payload)
			if err != nil {
				return c.fail(perr(wire.CodeMalformed, "%v", err))
			}
			if patterns >= maxPatterns {
				return c.fail(perr(wire.CodeForbidden, "too many listener patterns (limit %d)", maxPatterns))
			}
			if err := c.ch.index.Add(c, p); err != nil {
				return c.fail(perr(wire.CodeBadPattern, "%v", err))
			}
			patterns++
		case wire.TypeUnlisten:
			p, err := wire.ParseListen(f.Payload)
			if err != nil {
				return c.fail(perr(wire.CodeMalformed, "%v", err))
			}
			if c.ch.index.Remove(c, p) {
				patterns--
			}
		case wire.TypePing:
			tok, err := wire.ParseU64(f.Payload)
			if err != nil {
				return c.fail(perr(wire.CodeMalformed, "%v", err))
			}
			c.sendControl(wire.AppendU64(nil, wire.TypePong, tok))
		case wire.TypePong:
		case wire.TypeRequest:
			r, err := wire.ParseRequest(f.Payload)
			if err != nil {
				return c.fail(perr(wire.CodeMalformed, "%v", err))
			}
			if err := c.srv.handleRequest(c, r); err != nil {
				return c.fail(err)
			}
		case wire.TypeError:
			e, _ := wire.ParseError(f.Payload)
			return fmt.Errorf("agent reported error %d: %s", e.Code, e.Text)
		default:
			return c.fail(perr(wire.CodeProtocol, "unexpected %s frame from an agent", wire.TypeName(f.Type)))
		}
	}
}

// readLegacy reads NUL-terminated JSON envelopes, turns each into a native
// Msg frame, and routes it.
func (c *conn) readLegacy(br *bufio.Reader) error {
	var scratch, frame []byte
	for {
		b, err := wire.ReadLegacy(br, c.srv.limits.Load().maxFrame, &scratch)
		if err != nil {
			if errors.Is(err, wire.ErrLegacyTooLarge) {
				return c.fail(perr(wire.CodeTooLarge, "%v", err))
			}
			return err
		}
		env, err := wire.ParseLegacy(b)
		if err != nil {
			return c.fail(perr(wire.CodeMalformed, "%v", err))
		}
		frame = wire.AppendMsg(frame[:0], &wire.Msg{
			Flags:   wire.FlagJSON,
			Channel: c.ch.name,
			Agent:   c.id,
			Event:   env.Event,
			Data:    env.Data,
		})
		f, _, _ := wire.Split(frame)
		v, _ := wire.ParseMsg(f.Payload)
		c.msgsIn.Add(1)
		c.ch.route(c, frame, &v)
	}
}

// fail queues an error frame for a protocol error, and returns err.
func (c *conn) fail(err error) error {
	var pe *protoError
	if errors.As(err, &pe) {
		c.closeWithError(pe)
		c.srv.log.Warn("closing agent connection", "channel", c.ch.name, "agent", c.id, "err", pe.text)
	}
	return err
}

// deliver queues a message for the agent, or drops it (or disconnects the
// agent) if the agent's outbox is full. It reports whether the outbox is
// more than three quarters full and the sender should pause (see stall).
func (c *conn) deliver(raw []byte, v *wire.MsgView) (nearlyFull bool) {
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return false
	}
	// A frame larger than the bound is accepted into an empty outbox, and
	// does not count against the bound for the frames after it.
	n := len(c.obuf)
	frame := raw
	if c.legacy {
		c.lscratch = wire.AppendLegacy(c.lscratch[:0], v)
		frame = c.lscratch
	}
	if n > 0 && n-c.obig+len(frame) > lim.outBuffer {
		if lim.disconnectSlow {
			c.omu.Unlock()
			c.ch.stats.slow.Add(1)
			c.closeWithError(&protoError{code: wire.CodeSlowConsumer,
				text: fmt.Sprintf("disconnected as a slow consumer: more than %d bytes queued", lim.outBuffer)})
			c.srv.log.Warn("slow consumer disconnected", "channel", c.ch.name, "agent", c.id)
			return false
		}
		c.pending++
		c.omu.Unlock()
		c.dropped.Add(1)
		c.ch.stats.dropped.Add(1)
		return false
	}
	if c.pending > 0 && !c.legacy {
		c.obuf = wire.AppendU64(c.obuf, wire.TypeDropped, c.pending)
		c.pending = 0
	}
	c.obuf = append(c.obuf, frame...)
	if n == 0 && len(c.obuf) > lim.outBuffer {
		c.obig = len(c.obuf)
	}
	nearlyFull = !c.stalled && len(c.obuf)-c.obig > lim.outBuffer/4*3
	c.omu.Unlock()
	c.msgsOut.Add(1)
	c.bytesOut.Add(uint64(len(frame)))
	c.ch.stats.msgsOut.Add(1)
	c.ch.stats.bytesOut.Add(uint64(len(frame)))
	if n == 0 {
		c.signal()
	}
	return nearlyFull
}

// stallMax bounds how long a sender's reader pauses for one nearly full
// recipient; stallBudget bounds the pauses a recipient may cause while its
// writer makes no progress.
const (
	stallMax    = 5 * time.Millisecond
	stallBudget = 100 * time.Millisecond
)

// stall pauses the reader of this connection (the sender) until the
// writer of recipient r has taken its outbox, or for stallMax at most. A
// sender faster than its reader is thus slowed to the reader's pace
// instead of losing messages. A recipient whose writer makes no progress
// for stallBudget of such pauses stops causing them, and then has messages
// dropped (or is disconnected) as configured, so a stuck agent costs its
// senders a tenth of a second, not a pause per message. Deliveries to
// other agents are delayed by a pause, never blocked.
func (c *conn) stall(r *conn) {
	r.omu.Lock()
	if r.closing || r.stalled || len(r.obuf)-r.obig <= c.srv.limits.Load().outBuffer/4*3 {
		r.omu.Unlock()
		return
	}
	if r.room == nil {
		r.room = make(chan struct{})
	}
	room := r.room
	r.omu.Unlock()
	if c.stallTimer == nil {
		c.stallTimer = time.NewTimer(stallMax)
	} else {
		c.stallTimer.Reset(stallMax)
	}
	select {
	case <-room:
		c.stallTimer.Stop()
	case <-r.done:
		c.stallTimer.Stop()
	case <-c.stallTimer.C:
		r.omu.Lock()
		r.stalls += stallMax
		r.stalled = r.stalls >= stallBudget // no more pauses until its writer takes obuf
		r.omu.Unlock()
	}
}

// sendControl queues a frame that is not a message (pong, reply). Such
// frames are not dropped, but an agent that lets them pile up past twice
// its outbox bound is disconnected.
func (c *conn) sendControl(frame []byte) {
	if c.legacy {
		return
	}
	lim := c.srv.limits.Load()
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	if len(c.obuf) > 2*lim.outBuffer {
		c.omu.Unlock()
		c.closeWithError(&protoError{code: wire.CodeSlowConsumer, text: "disconnected: not reading its replies"})
		return
	}
	c.obuf = append(c.obuf, frame...)
	c.omu.Unlock()
	c.signal()
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWithError stops deliveries and has the writer send an error frame
// after what is queued (or instead of it, for a slow consumer), then close.
func (c *conn) closeWithError(pe *protoError) {
	c.omu.Lock()
	if c.closing {
		c.omu.Unlock()
		return
	}
	c.closing = true
	// An agent that does not read must not keep its connection: the
	// writer gets lingerTimeout to send what is queued and the error.
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	if pe.code == wire.CodeSlowConsumer {
		c.obuf = c.obuf[:0]
	}
	if c.legacy {
		c.obuf = appendLegacyError(c.obuf, pe)
	} else {
		c.obuf = wire.AppendError(c.obuf, wire.Error{Code: pe.code, Text: pe.text})
	}
	c.omu.Unlock()
	c.signal()
}

// appendLegacyError tells a legacy agent what went wrong, as an event
// named "nc-error" on the control channel.
func appendLegacyError(dst []byte, pe *protoError) []byte {
	data := fmt.Appendf(nil, `{"code":%d,"error":%q}`, pe.code, pe.text)
	return wire.AppendLegacy(dst, &wire.MsgView{Flags: wire.FlagJSON, Channel: []byte("control"), Event: []byte("nc-error"), Data: data})
}

// writeLoop writes queued frames, many per system call, until the
// connection closes or, when closing, until the outbox is empty.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var spare []byte
	idle := time.NewTimer(idleRelease)
	defer idle.Stop()
	for {
		for {
			c.omu.Lock()
			if len(c.obuf) == 0 && c.pending > 0 && !c.legacy {
				// The agent caught up: tell it what it missed.
				c.obuf = wire.AppendU64(c.obuf, wire.TypeDropped, c.pending)
				c.pending = 0
			}
			batch := c.obuf
			closing := c.closing
			if len(batch) == 0 {
				c.omu.Unlock()
				if closing {
					c.close()
					return
				}
				break
			}
			c.obuf = spare[:0]
			c.obig = 0
			c.stalled, c.stalls = false, 0
			if c.room != nil {
				close(c.room)
				c.room = nil
			}
			c.omu.Unlock()
			if _, err := c.nc.Write(batch); err != nil {
				c.close()
				return
			}
			spare = batch
		}
		idle.Reset(idleRelease)
		select {
		case <-c.wake:
		case <-idle.C:
			// Idle: give back large buffers; they are kept while
			// messages flow.
			spare = nil
			c.omu.Lock()
			if len(c.obuf) == 0 && cap(c.obuf) > idleKeptBuf {
				c.obuf = nil
			}
			c.omu.Unlock()
			select {
			case <-c.wake:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

// linger lets the writer send what is queued (an error frame, say) for a
// short while after the reader ended, then closes the connection.
func (c *conn) linger() {
	c.omu.Lock()
	c.closing = true
	c.omu.Unlock()
	c.signal()
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	select {
	case <-c.writerDone:
	case <-t.C:
	}
	c.close()
	<-c.writerDone
}

// waitFlushed waits until the writer has written everything and stopped,
// or until done is closed.
func (c *conn) waitFlushed(done <-chan struct{}) {
	select {
	case <-c.writerDone:
	case <-c.done:
	case <-done:
	}
}

// close closes the connection at once. Safe to call more than once.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}
