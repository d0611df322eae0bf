package netcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"github.com/netcluster/netcluster/internal/batchwriter"
	"github.com/netcluster/netcluster/internal/wire"
)

const (
	readBufSize = 64 << 10
	// largeReadBuf is the read buffer of a connection that has received
	// a frame larger than 8 KiB (wire.NewGrowingReader): S4's subscriber
	// reads and hands to its handlers its 16 KiB messages up to 15 at a
	// time, not 3 or 4.
	largeReadBuf     = 256 << 10
	handshakeTimeout = 10 * time.Second
	// keptBuf is the largest empty send buffer an idle writer keeps
	// (see batchwriter.IdleRelease).
	keptBuf = 64 << 10
)

// connect dials and performs the handshake: preamble and Hello out,
// Welcome (or an Error) back. It offers protocol version 4 (a server of a
// lower version answers with its own) and, if the server refuses it as
// unknown, dials again with version 1.
func (a *Agent) connect(ctx context.Context) (net.Conn, *wire.Reader, wire.Welcome, error) {
	nc, rd, w, err := a.connectVersion(ctx, wire.VersionGaps)
	var se *ServerError
	if errors.As(err, &se) && se.Code == wire.CodeVersion {
		return a.connectVersion(ctx, wire.Version)
	}
	return nc, rd, w, err
}

func (a *Agent) connectVersion(ctx context.Context, version byte) (net.Conn, *wire.Reader, wire.Welcome, error) {
	var w wire.Welcome
	nc, err := a.dial(ctx)
	if err != nil {
		return nil, nil, w, fmt.Errorf("netcluster: connect to channel %q at %s: %w", a.channel, a.where, err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	hello := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{
		Version: version, PID: uint32(os.Getpid()), AgentID: a.id, Channel: a.channel,
	})...)
	rd := wire.NewGrowingReader(nc, readBufSize, largeReadBuf, wire.DefaultMaxFrame)
	fail := func(err error) (net.Conn, *wire.Reader, wire.Welcome, error) {
		nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, nil, w, fmt.Errorf("netcluster: connect to channel %q at %s: %w", a.channel, a.where, err)
	}
	if _, err := nc.Write(hello); err != nil {
		return fail(err)
	}
	f, err := rd.Next()
	if err != nil {
		return fail(err)
	}
	switch f.Type {
	case wire.TypeWelcome:
		if w, err = wire.ParseWelcome(f.Payload); err != nil {
			return fail(err)
		}
	case wire.TypeError:
		e, _ := wire.ParseError(f.Payload)
		return fail(&ServerError{Code: e.Code, Text: e.Text})
	default:
		return fail(fmt.Errorf("expected welcome, got %s", wire.TypeName(f.Type)))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	// Messages to us may be as large as the server allows.
	rd.SetMax(max(int(w.MaxFrame), wire.DefaultMaxFrame))
	return nc, rd, w, nil
}

// attach makes nc the agent's connection: the server learns every
// listener pattern first, then gets the messages buffered meanwhile. Call
// with mu held.
func (a *Agent) attach(nc net.Conn, w wire.Welcome) {
	var resume []byte
	if w.Version >= wire.VersionGaps {
		resume = wire.AppendStreamAcked(resume, a.stream, a.seq, a.acked) // first (gaps.go)
	}
	for p := range a.patterns {
		resume = wire.AppendListen(resume, wire.TypeListen, p)
	}
	a.version = w.Version
	calls := w.Version >= wire.VersionCalls
	if calls {
		resume = a.appendQueueListens(resume)
		if w.Version >= wire.VersionGaps {
			resume = a.seen.appendWatch(resume, int(w.MaxFrame))
		}
	} else {
		a.failCallsLocked(fmt.Errorf("%w (it speaks protocol version %d)", ErrUnsupported, w.Version))
	}
	out := a.out
	if len(a.queued) > 0 {
		out = a.unqueue(nil)
	}
	a.out = a.resendLocked(resume, out, calls, w.Version >= wire.VersionAcks)
	if calls {
		// Replays asked while disconnected, or cut off by the end of the
		// last connection, are asked again (resendLocked dropped their frames).
		for _, pr := range a.replays {
			pr.msgs, pr.discarded = nil, 0
			a.out = wire.AppendReplay(a.out, pr.req)
		}
	}
	a.nc = nc
	a.maxFrame = int(w.MaxFrame)
	a.state = Connected
	a.changed.broadcast()
	if len(a.out) > 0 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// onlyMsgs keeps the Msg frames of buf, in place, and with calls the Call
// and Answer frames too (their requesters wait for ctx, and answers are
// addressed by agent id, so both survive a reconnection). Listen frames
// are dropped because attach sends the whole listener set, and Ping frames
// because their waiters have been failed.
func onlyMsgs(buf []byte, calls bool) []byte {
	out := buf[:0]
	for f := range wire.Frames(buf) {
		if f.Type == wire.TypeMsg || calls && (f.Type == wire.TypeCall || f.Type == wire.TypeAnswer) {
			out = append(out, f.Raw...) // never past f: moves bytes back
		}
	}
	return out
}

// supervise runs connections one after the other until the agent closes,
// reconnecting with backoff.
func (a *Agent) supervise(nc net.Conn, rd *wire.Reader) {
	defer a.wg.Done()
	for {
		err := a.session(nc, rd)
		a.mu.Lock()
		a.nc = nil
		if !a.closing {
			a.state = Disconnected
		}
		for tok, ch := range a.pings {
			ch <- errConnLost
			delete(a.pings, tok)
		}
		closing := a.closing
		if !a.opts.reconnect {
			a.gaveUp = true
			a.failCallsLocked(fmt.Errorf("%w: %v", ErrNotConnected, err))
		}
		a.changed.broadcast()
		a.mu.Unlock()
		var se *ServerError
		if errors.As(err, &se) {
			a.q.push(false, item{err: se})
		}
		if a.ctx.Err() != nil {
			return
		}
		a.notifyState(Disconnected, err)
		if !a.opts.reconnect {
			if !closing {
				a.log.Warn("connection lost; not reconnecting", "channel", a.channel, "err", err)
			}
			return
		}
		a.log.Info("connection lost; reconnecting", "channel", a.channel, "err", err)
		var w wire.Welcome
		nc, rd, w = a.reconnect()
		if nc == nil {
			return
		}
		a.mu.Lock()
		// A Close waiting to send what is left gets the connection; one
		// done waiting (Closed) waits for us.
		if a.state == Closed {
			a.mu.Unlock()
			nc.Close()
			return
		}
		a.attach(nc, w)
		a.mu.Unlock()
		a.notifyState(Connected, nil)
	}
}

func (a *Agent) notifyState(s State, err error) {
	if a.opts.onState != nil {
		a.opts.onState(s, err)
	}
}

// reconnect dials with exponential backoff until it connects or the agent
// closes (then it returns nil).
func (a *Agent) reconnect() (net.Conn, *wire.Reader, wire.Welcome) {
	wait := a.opts.minWait
	for {
		t := time.NewTimer(wait)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return nil, nil, wire.Welcome{}
		case <-t.C:
		}
		nc, rd, w, err := a.connect(a.ctx)
		if err == nil {
			return nc, rd, w
		}
		a.log.Debug("reconnect failed", "channel", a.channel, "err", err, "retry_in", wait)
		wait = min(2*wait, a.opts.maxWait)
	}
}

// session serves one connection until it fails or the agent closes: a
// reader goroutine and this one, writing.
func (a *Agent) session(nc net.Conn, rd *wire.Reader) error {
	var readErr error
	readDone := make(chan struct{})
	go func() {
		readErr = a.readLoop(rd)
		nc.Close() // a writer blocked on a dead connection returns
		close(readDone)
	}()
	// The writer writes what is queued, batching whatever accumulated
	// while the previous write ran, until a write fails or the reader
	// ends. Its buffers are kept while messages flow.
	err := batchwriter.Run(nc, sendQueue{a}, a.wake, readDone)
	if err != nil {
		// A write fails when the server has closed the connection, most
		// often after saying why in an Error frame (a channel removed by
		// a reload, a slow consumer): the reader gets a moment to read it,
		// rather than "broken pipe" being all the agent reports.
		nc.SetReadDeadline(time.Now().Add(time.Second))
		select {
		case <-readDone:
		case <-time.After(time.Second):
		}
	}
	nc.Close()
	<-readDone
	var se *ServerError
	if err == nil || errors.As(readErr, &se) {
		err = readErr
	}
	return err
}

// sendQueue is the agent's side of its writer: the frames in out.
type sendQueue struct{ a *Agent }

var _ batchwriter.Queue = sendQueue{}

func (q sendQueue) Take(spare []byte) ([]byte, bool) {
	a := q.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.takeQueued(); ok {
		if cap(spare) > 0 {
			a.recycle(spare) // the writer's last batch, not kept
		}
		a.writing = true
		a.inflight = len(b.buf)
		a.takenLast = b.last
		a.changed.broadcast()
		return b.buf, false
	}
	batch := a.out
	if len(batch) > 0 {
		if cap(spare) == 0 && len(a.free) > 0 {
			spare = a.free[len(a.free)-1]
			a.free[len(a.free)-1] = nil
			a.free = a.free[:len(a.free)-1]
		}
		if cap(spare) < len(batch) {
			// The batch was kept (acks.go) and no buffer as large is
			// free: the next one is likely about as large, and growing
			// to that by doubling would copy it over and over as Emit
			// appends; past half a chunk, that is a chunk (sendbuf.go).
			switch {
			case len(batch) <= outChunk/2:
				spare = make([]byte, 0, 2*len(batch))
			case len(batch) <= outChunk:
				spare = a.chunk(len(batch))
			default:
				spare = make([]byte, 0, min(2*len(batch), max(a.opts.bufferSize, keptBuf)))
			}
		}
		a.out = spare
		a.writing = true
		a.inflight = len(batch)
		a.takenLast, a.outLast = a.outLast, 0
		a.changed.broadcast()
	}
	return batch, false
}

func (q sendQueue) Wrote(batch []byte, n int, err error) {
	a := q.a
	a.mu.Lock()
	a.writing = false
	a.inflight = 0
	last := a.takenLast
	var rest []byte
	if err != nil {
		// What did not reach the kernel goes out again on the next
		// connection, from the first frame not wholly written, all of
		// it in its order: the batch is kept only up to there. (Kept
		// whole, its numbered messages went out again before the rest's
		// calls, answers and unnumbered messages, which followed them
		// in out: after the messages emitted after them.)
		rest = unwritten(batch, n)
		batch = batch[:len(batch)-len(rest)]
		last = lastSeq(batch)
	}
	// A batch with messages not yet acknowledged is kept (acks.go): they
	// go out again on the next connection if no Ack comes first.
	a.kept = last > a.acked
	if a.kept {
		a.sent = append(a.sent, sentBatch{buf: batch, last: last})
		a.sentBytes += len(batch)
	}
	if err != nil {
		a.out = a.unqueue(rest)
		if a.outLast == 0 {
			a.outLast = lastSeq(rest) // nothing numbered after the rest
		}
	}
	a.changed.broadcast()
	a.mu.Unlock()
}

func (q sendQueue) Kept() bool { return q.a.kept }

func (q sendQueue) Idle() {
	q.a.mu.Lock()
	q.a.out = batchwriter.Trim(q.a.out, keptBuf)
	clear(q.a.free)
	q.a.free = q.a.free[:0]
	clear(q.a.chunks)
	q.a.chunks = q.a.chunks[:0]
	q.a.mu.Unlock()
}

// unwritten returns the frames of batch from the first one not wholly
// within its first n bytes.
func unwritten(batch []byte, n int) []byte {
	return append([]byte(nil), batch[wire.WholeLen(batch[:n]):]...)
}

// readLoop reads frames from the server until the connection ends.
//
// Messages go to the handler queue in batches: all those already buffered,
// up to maxBatch, so a busy stream costs one queue operation per batch.
// Any other frame first sends the batch, to keep the stream's order.
func (a *Agent) readLoop(rd *wire.Reader) error {
	const maxBatch = 256
	var alloc recvAlloc
	// keep allocates what must outlive its batch: requests and replayed
	// messages. It is alloc, unless messages are borrowed (borrow.go).
	keep := &alloc
	var lend *recvAlloc // what trades slabs with the queue, if borrowed
	if a.opts.borrow {
		alloc.rec = new(recycler)
		keep, lend = new(recvAlloc), &alloc
	}
	var batch []item
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if lend != nil {
			lend.retire()
		}
		var ok bool
		batch, ok = a.q.pushBatch(true, batch, lend)
		if lend != nil {
			lend.topUp(spareSlabs(a.opts.queueSize))
		}
		return ok
	}
	defer flush() // what arrived before an error is still handled
	for {
		if len(batch) > 0 && (len(batch) >= maxBatch || !rd.Ready()) {
			if !flush() {
				return ErrClosed
			}
		}
		f, err := rd.Next()
		if err != nil {
			return err
		}
		// See immediate: answers are handled at once.
		if !immediate(f.Type) && !flush() {
			return ErrClosed
		}
		switch f.Type {
		case wire.TypeMsg:
			if len(f.Payload) > 0 && f.Payload[0]&wire.FlagReplayed != 0 {
				if err := a.onReplayed(keep, f.Payload); err != nil {
					return err
				}
				continue
			}
			m, err := alloc.received(f.Payload)
			if err != nil {
				return err
			}
			batch = appendMsg(batch, m)
		case wire.TypeSeqMsg:
			m, gap, err := a.recvSeq(&alloc, f.Payload)
			if err != nil {
				return fromServer(err)
			}
			if gap != nil {
				batch = append(batch, item{err: gap}) // the old stream's, before (gaps.go)
			}
			if m != nil {
				batch = appendMsg(batch, m)
			}
		case wire.TypeCall, wire.TypeQueueMsg:
			m, sid, err := a.readCall(&alloc, keep, f)
			if err != nil {
				return fromServer(err)
			}
			batch = append(batch, item{msg: m, sid: sid, queued: f.Type == wire.TypeQueueMsg})
		default:
			if err := a.onFrame(f); err != nil {
				return err
			}
		}
	}
}

// appendMsg appends the item of m to batch. The array of a batch is zero
// past its length (new, or given back emptied: dispatch and pushBatch
// clear what they used), so only the pointer is written: one write
// barrier while the GC marks, where appending item{msg: m} moves a whole
// 40-byte item through the barrier, its nil pointers included.
func appendMsg(batch []item, m *Message) []item {
	n := len(batch)
	if n == cap(batch) {
		batch = append(batch, item{})
	} else {
		batch = batch[:n+1]
	}
	batch[n].msg = m
	return batch
}

// received decodes a Msg payload into a Message from the slabs.
func (alloc *recvAlloc) received(payload []byte) (*Message, error) {
	v, same := alloc.sameHeader(payload) // recv_seq.go
	if !same {
		var err error
		if v, err = wire.ParseMsg(payload); err != nil {
			return nil, fromServer(err)
		}
	}
	return alloc.fields(payload, &v, same), nil
}

// view makes a Message from the slabs out of a decoded Msg.
func (alloc *recvAlloc) view(v *wire.MsgView) *Message {
	// Field by field into the slab's zeroed memory: no copy of a whole
	// Message, whose write barrier would scan it while the GC marks.
	alloc.hdr = alloc.hdr[:0] // last changes (recv_seq.go)
	m := alloc.message()
	m.Event = alloc.field(fieldEvent, v.Event)
	m.Data = alloc.bytes(v.Data)
	m.JSON = v.Flags&wire.FlagJSON != 0
	m.Channel = alloc.field(fieldChannel, v.Channel)
	m.Agent = alloc.field(fieldAgent, v.Agent)
	if node := alloc.field(fieldNode, v.Node); node != "" {
		m.Node = node // (the slab is zeroed: no write barrier for "")
	}
	return m
}

// onFrame acts on a frame from the server other than a Msg. An error ends
// the connection.
func (a *Agent) onFrame(f wire.Frame) error {
	switch f.Type {
	case wire.TypePong:
		tok, err := wire.ParseU64(f.Payload)
		if err != nil {
			return fromServer(err)
		}
		a.mu.Lock()
		if ch := a.pings[tok]; ch != nil {
			ch <- nil
			delete(a.pings, tok)
		}
		a.mu.Unlock()
	case wire.TypePing:
		tok, err := wire.ParseU64(f.Payload)
		if err != nil {
			return fromServer(err)
		}
		a.mu.Lock()
		a.queueFrame(wire.AppendU64(a.out, wire.TypePong, tok))
		a.mu.Unlock()
	case wire.TypeAck:
		seq, err := wire.ParseU64(f.Payload)
		if err != nil {
			return fromServer(err)
		}
		a.onAck(seq)
	case wire.TypeDropped:
		n, err := wire.ParseU64(f.Payload)
		if err != nil {
			return fromServer(err)
		}
		a.q.push(false, item{err: &DroppedError{Count: n}})
	case wire.TypeReplayEnd:
		return a.onReplayEnd(f.Payload)
	case wire.TypeStreamEnd, wire.TypeGone:
		if err := a.onGap(f); err != nil {
			return fromServer(err)
		}
	case wire.TypeAnswer, wire.TypeNoResponders:
		if err := a.readAnswer(f); err != nil {
			return fromServer(err)
		}
	case wire.TypeError:
		e, err := wire.ParseError(f.Payload)
		if err != nil {
			return fromServer(err)
		}
		return &ServerError{Code: e.Code, Text: e.Text}
	default:
		return fmt.Errorf("netcluster: unexpected %s frame from the server", wire.TypeName(f.Type))
	}
	return nil
}

// fromServer wraps an error decoding what the server sent.
func fromServer(err error) error {
	return fmt.Errorf("netcluster: from server: %w", err)
}

// dispatch runs handlers, one message at a time, until the agent closes.
func (a *Agent) dispatch() {
	defer a.wg.Done()
	var batches [][]item
	var lent *slabs // the slabs of batches, if borrowed (borrow.go)
	if a.opts.borrow {
		lent = new(slabs)
	}
	for {
		var ok bool
		lent.clearMsgs() // every handler of their messages has run
		if batches, ok = a.q.popAll(batches, lent); !ok {
			return
		}
		for _, b := range batches {
			for i := range b {
				a.handle(b[i])
				if a.ctx.Err() != nil {
					return // closed: no handler runs after Close
				}
			}
			clearItems(b) // the array goes back to the reader (popAll)
		}
	}
}

// clearItems zeroes b, whose array goes back to the reader: it must keep
// no message alive, and appendMsg counts on it being zero. A message's
// item has its pointer alone cleared, one write barrier while the GC
// marks where clearing the whole 40-byte item has four.
func clearItems(b []item) {
	for i := range b {
		if it := &b[i]; it.err == nil && it.replay == nil {
			it.msg, it.sid, it.queued = nil, 0, false
		} else {
			*it = item{}
		}
	}
}

// handle runs the handlers of one message, or the error handler.
func (a *Agent) handle(it item) {
	if it.replay != nil {
		a.endListenReplay(it.replay)
		return
	}
	if it.err != nil {
		a.asyncError(it.err)
		return
	}
	if it.queued {
		a.handleQueued(it)
		return
	}
	for _, l := range a.listeners.MatchMemo(unsafeBytes(it.msg.Event), &a.memo) {
		if l.replaying {
			if !l.off.Load() {
				a.holdLive(l, it.msg)
			}
			continue
		}
		if l.once {
			if !l.Off() {
				continue
			}
		} else if l.off.Load() {
			continue
		}
		l.handler(it.msg)
	}
}

// unsafeBytes returns the bytes of s without copying; they must not be
// modified.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func (a *Agent) asyncError(err error) {
	if a.opts.onError != nil {
		a.opts.onError(err)
		return
	}
	a.log.Warn("netcluster", "channel", a.channel, "err", err)
}
