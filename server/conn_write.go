package server

// Writing: the outbox to the socket, and closing the connection.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"time"

	"github.com/netcluster/netcluster/internal/batchwriter"
	"github.com/netcluster/netcluster/internal/wire"
)

// lingerTimeout is how long a closing connection's writer gets to write
// what is queued, a last error frame say. A slow consumer's writer gets
// slowLinger to write its error frame (see sockWriter).
const (
	lingerTimeout = time.Second
	slowLinger    = 10 * time.Second
)

// keptBuf is the largest empty outbox buffer an idle writer keeps (see
// batchwriter.IdleRelease): less than an agent keeps, as the server holds
// one per agent.
const keptBuf = 16 << 10

// writeLoop writes queued frames, many per system call, until the
// connection closes or, when closing, until the outbox is empty; then it
// closes writerDone. A writer with nothing to write for
// batchwriter.IdleRelease ends instead, and signal starts another when
// frames are queued: an idle agent costs no goroutine for writing (S8).
// Calling it starts writers for good (startOutput).
func (c *conn) writeLoop() {
	// writerUp before writerOn: a signal that sees writers allowed must
	// also see this one running, or it starts a second (tests call
	// writeLoop directly; startWriter has set writerUp already).
	c.writerUp.Store(true)
	c.writerOn.Store(true)
	wc := c.writer()
	for {
		err := batchwriter.RunUntilIdle(sockWriter{c}, outboxQueue{c}, wc.wake, c.done)
		if !errors.Is(err, batchwriter.ErrIdle) {
			break
		}
		c.writerUp.Store(false)
		// A signal before the store saw a writer running and started
		// none; its wake is still there, and this writer goes on, unless
		// a signal after the store started another.
		if len(wc.wake) == 0 || !c.writerUp.CompareAndSwap(false, true) {
			return
		}
	}
	close(wc.writerDone)
	c.close()
}

// writerChans are what writers need beyond the outbox: made once per
// connection, by the first that needs them (writer).
type writerChans struct {
	wake       chan struct{} // a frame was queued (signal)
	writerDone chan struct{} // closed by the last writer (writeLoop)
}

// writer returns c's writerChans, made at the first call. Any goroutine
// may call it: the first to store them wins, and a loser's pair is
// garbage (once per connection at most, never per message).
func (c *conn) writer() *writerChans {
	if wc := c.wc.Load(); wc != nil {
		return wc
	}
	wc := &writerChans{wake: make(chan struct{}, 1), writerDone: make(chan struct{})}
	if c.wc.CompareAndSwap(nil, wc) {
		return wc
	}
	return c.wc.Load()
}

// startWriter starts a writer if writers may run (startOutput) and none
// does.
func (c *conn) startWriter() {
	if c.writerOn.Load() && c.writerUp.CompareAndSwap(false, true) {
		go c.writeLoop()
	}
}

// startOutput lets writers run once the handshake is done, and has what
// it queued (the Welcome, and what was routed to the agent since) written:
// in place if it can be (conn_direct.go), else by a writer.
func (c *conn) startOutput() {
	c.writerOn.Store(true)
	c.omu.Lock()
	wrote := len(c.obuf) > 0 && c.flushNowLocked() > 0
	c.omu.Unlock()
	if !wrote {
		c.signal()
	}
}

// errCut ends the writer of a slow consumer once its error frame is out.
var errCut = errors.New("disconnected as a slow consumer")

// sockWriter is the socket as the writer sees it. When the agent is
// disconnected as a slow consumer (closeWithError), the write in flight is
// cut short by a deadline: the writer finishes only the frame it was in,
// then writes the error frame, waiting up to slowLinger for the agent to
// read. The messages after the cut are never delivered (queue group ones
// go to other members), and the agent is told why its stream ends, however
// long it had stopped reading.
type sockWriter struct{ c *conn }

// writeChunk is the most the writer hands the socket at once: after each
// chunk of a larger batch it tells stalled senders that the agent is
// reading (wroteChunk).
const writeChunk = 256 << 10

func (w sockWriter) Write(p []byte) (int, error) {
	c := w.c
	n := 0
	for n < len(p) {
		m, err := c.nc.Write(p[n:min(len(p), n+writeChunk)])
		n += m
		if err != nil {
			return w.failed(p, n, err)
		}
		if n < len(p) {
			c.wroteChunk(n)
		}
	}
	return n, nil
}

// wroteChunk notes that n bytes of the batch are written: they no longer
// count against the bound, and senders paused for the agent go on.
func (c *conn) wroteChunk(n int) {
	c.omu.Lock()
	c.inflight = max(0, c.batchLen-max(c.batchBig, n))
	c.tookLocked()
	c.omu.Unlock()
}

// failed deals with a write of p that failed after n bytes.
func (w sockWriter) failed(p []byte, n int, err error) (int, error) {
	c := w.c
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	c.omu.Lock()
	last, until := c.cutLocked()
	c.omu.Unlock()
	if last == nil {
		return n, err
	}
	c.nc.SetWriteDeadline(until)
	start, end := frameAt(p, n, c.legacy)
	if start >= len(p)-len(last) && bytes.HasSuffix(p, last) {
		last = nil // the error frame is the rest of p
		end = len(p)
	}
	m, err := c.nc.Write(p[n:end])
	n += m
	if err == nil && last != nil {
		_, err = c.nc.Write(last)
	}
	if err == nil {
		err = errCut
	}
	return n, err
}

// frameAt returns where the frame holding byte off of a batch starts and
// ends (off, off if off is between frames): native frames by their length
// prefix, legacy envelopes by their NUL.
func frameAt(p []byte, off int, legacy bool) (start, end int) {
	if legacy {
		start = bytes.LastIndexByte(p[:off], 0) + 1
		if start == off {
			return off, off
		}
		if i := bytes.IndexByte(p[off:], 0); i >= 0 {
			return start, off + i + 1
		}
		return start, len(p)
	}
	for start < off && start+wire.LenSize <= len(p) {
		end = start + wire.LenSize + int(binary.BigEndian.Uint32(p[start:]))
		if end > off {
			return start, min(end, len(p))
		}
		start = end
	}
	return off, off
}

// outboxQueue is the connection's side of its writer: the outbox.
type outboxQueue struct{ c *conn }

var _ batchwriter.Queue = outboxQueue{}

// convBatch is how many bytes of the Msg frames queued before a
// connection turned out legacy the writer turns into envelopes at a time.
// What is converted still holds conv's array, and counts against the
// outbox bound (queuedLocked) until a quarter of the array (convSpare) and
// at least convBatch is converted: the rest then moves to an array of its
// size, and the outbox has room again. Conv and the envelopes queued after
// it so hold the bound, not up to twice it (100 silent connections turned
// legacy took the process past its memorylimit); the copies cost at most
// convSpare-1 times what was converted.
const (
	convBatch = 32 << 10
	convSpare = 4
)

// Take hands the outbox to the writer, which lets stalled senders go on.
// Messages queued before the connection turned out legacy go first, a
// batch of convBatch at a time, turned into envelopes here.
func (q outboxQueue) Take(spare []byte) ([]byte, bool) {
	c := q.c
	c.omu.Lock()
	for len(c.conv) > 0 {
		if batch := q.convert(spare); len(batch) > 0 {
			return batch, false
		}
		c.omu.Lock()
	}
	defer c.omu.Unlock()
	if len(c.obuf) == 0 && !c.legacy {
		// The agent caught up: tell it what it missed.
		c.obuf = c.appendDroppedLocked(c.obuf)
	}
	batch := c.obuf
	if len(batch) == 0 {
		if c.full.Load() != 0 {
			// Full only for the batch it has written since: the whole
			// bound is free. A native agent is told of its drops (a
			// frame, taken), a legacy one is not: without this, its
			// messages were dropped for good, nothing ever queued.
			c.clearFull()
			c.ackMark()
		}
		return nil, c.closing
	}
	c.obuf = spare
	c.takes++ // acks.go
	c.takenLocked(len(batch), c.obig)
	return batch, false
}

// takenLocked notes that the writer took a batch of size bytes, big of
// them a frame larger than the bound at its head; the caller counts the
// take (c.takes, acks.go). c.omu is held.
func (c *conn) takenLocked(size, big int) {
	c.batchLen, c.batchBig = size, big
	c.inflight = size - big
	c.writing = true
	c.obig = 0
	c.tookLocked()
}

// tookLocked notes that the writer took queued frames: stalled senders go
// on. c.omu is held.
func (c *conn) tookLocked() {
	c.progress.Add(1)
	c.ackMark() // progress, and no longer full or stalled (acks_set.go)
	if c.slow != nil && len(c.slow.chargedBy) > 0 {
		c.refundLocked()
	}
	c.clearFull()
	if c.unproven != 0 && c.wrote < c.unproven {
		// Written into a socket buffer that had room (toLegacy): still
		// not paused for.
		c.wakeRoomLocked()
		return
	}
	c.unproven = 0
	c.stalled, c.stalls, c.waits = false, 0, 0
	c.wakeRoomLocked()
}

// wakeRoomLocked lets senders paused for c go on. c.omu is held.
func (c *conn) wakeRoomLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// convert takes up to convBatch bytes of whole frames from the head of
// conv and returns them as legacy envelopes appended to spare. It is called
// with c.omu held and returns with it released: the envelopes are made
// without it (only the writer takes from conv).
func (q outboxQueue) convert(spare []byte) []byte {
	c := q.c
	n := convChunk(c.conv)
	chunk := c.conv[:n:n]
	c.conv, c.convGone = c.conv[n:], c.convGone+n
	switch {
	case len(c.conv) == 0:
		c.conv, c.convGone = nil, 0
	case c.convGone >= max((c.convGone+cap(c.conv))/convSpare, convBatch):
		// The rest to an array of its size (chunk keeps the old one
		// while it is converted).
		c.conv, c.convGone = bytes.Clone(c.conv), 0
	}
	big := c.obig > 0 // then chunk is that one frame
	c.obig = 0
	// The chunk is the batch being written from now on (its frames, then
	// its envelopes: takenLocked), as inflight counts it.
	c.inflight, c.batchLen, c.batchBig = len(chunk), len(chunk), 0
	if big {
		c.inflight, c.batchBig = 0, len(chunk)
	}
	// In a write from now on: nothing is written in place meanwhile
	// (flushNowLocked), which would pass the chunk; and the take is
	// counted as the chunk leaves conv, for acks (snapshot) count what
	// conv holds apart.
	c.writing = true
	c.takes++
	if c.conv == nil {
		c.convLast = c.takes // acks wait for it (acks_round.go)
	}
	c.omu.Unlock()
	batch := spare
	for f := range wire.Frames(chunk) {
		if f.Type != wire.TypeMsg {
			continue
		}
		if v, err := wire.ParseMsg(f.Payload); err == nil {
			batch = wire.AppendLegacy(batch, &v)
		}
	}
	c.omu.Lock()
	switch {
	case len(batch) == 0:
		// Nothing to write (cannot happen: deliver queues Msg frames):
		// the chunk is taken and written at once, as acks count it.
		c.takenLocked(0, 0)
		c.inflight, c.writing = 0, false
		c.batches.Add(1)
		c.srv.acks.written()
	case big:
		c.takenLocked(len(batch), len(batch))
	default:
		c.takenLocked(len(batch), 0)
	}
	c.omu.Unlock()
	return batch
}

// convChunk returns how many bytes of whole frames at the head of conv
// convert takes at once: convBatch or more, to a frame's end.
func convChunk(conv []byte) int {
	n := 0
	for n < len(conv) && (n == 0 || n < convBatch) {
		size, ok := wire.FrameLen(conv[n:])
		if !ok || n+size > len(conv) {
			return len(conv) // cannot happen: deliver queues whole frames
		}
		n += size
	}
	return n
}

// Wrote keeps, after a failed write, the queue group messages the write
// did not hand to the connection, for other members (requeue). The failed
// write ends the writer, which closes the connection.
func (q outboxQueue) Wrote(batch []byte, n int, err error) {
	q.c.omu.Lock()
	q.c.inflight, q.c.batchLen, q.c.batchBig = 0, 0, 0
	q.c.wrote += uint64(n)
	q.c.writing = false
	q.c.omu.Unlock()
	q.c.batches.Add(1) // acks.go
	q.c.srv.acks.written()
	if err == nil {
		return
	}
	_, taken := takeQueued(nil, unwrittenFrames(batch, n), func(uint32) bool { return true })
	if len(taken) > 0 {
		q.c.omu.Lock()
		sl := q.c.slowLocked()
		sl.unsent = append(sl.unsent, taken...)
		q.c.omu.Unlock()
	}
}

func (q outboxQueue) Idle() {
	q.c.omu.Lock()
	q.c.obuf = batchwriter.Trim(q.c.obuf, keptBuf)
	q.c.omu.Unlock()
}

// linger lets the writer send what is queued (an error frame, say) for a
// short while after the reader ended, then closes the connection.
func (c *conn) linger() {
	c.omu.Lock()
	c.closing = true
	c.clearFull()
	c.omu.Unlock()
	c.signal()
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	done := c.writer().writerDone
	select {
	case <-done:
	case <-t.C:
	}
	c.close()
	<-done
}

// waitFlushed waits until the writer has written everything and stopped,
// or until done is closed.
func (c *conn) waitFlushed(done <-chan struct{}) {
	select {
	case <-c.writer().writerDone:
	case <-c.done:
	case <-done:
	}
}

// close closes the connection at once. Safe to call more than once.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.srv.parked.unpark(c) // its reader meets the closed connection
		if testHookClosing != nil {
			testHookClosing(c)
		}
		c.nc.Close()
	})
}

// testHookClosing, if set by a test, runs in close between unparking the
// connection and closing its socket: where a reader that parks then
// would never be resumed.
var testHookClosing func(*conn)
