package server

// Writing in place: a message for a native agent whose writer is idle and
// outbox empty is written to the agent's socket at once by the sender's
// reader, as nats-server's flush in place does, instead of waking the
// writer to do it: one goroutine hand-off fewer per message through the
// server, most of a round trip's cost when one message is in flight.
// Only when the sender has sent nothing after it yet (its reader would
// next wait for the socket): a sender's burst is routed as before, each
// writer batching what the burst queued for it while the reader goes on.

import "syscall"

// directMax is the largest outbox written in place: a small frame or two.
// A larger one goes to the writer, which cuts it into chunks (sockWriter).
// A Unix stream socket takes a write this small whole or not at whatever
// SO_SNDBUF (at least 4,608 bytes; the kernel puts up to half of it
// in one buffer), so no frame is ever left half written (the outbox and
// its requeue parse whole frames).
const directMax = 2 << 10

// inPlaceMax bounds the recipients of one message that the sender's
// reader writes to in place; writers write to the others.
const inPlaceMax = 4

// idleReader reports whether the reader has read all the agent sent: the
// frame it is acting on is the agent's last for now. Only the reader
// calls it.
func (c *conn) idleReader() bool { return c.br != nil && c.br.Buffered() == 0 }

// direct is what a connection needs to write in place: its socket's raw
// form, and the function that writes with it, made once so a write
// allocates nothing. Both under omu, like the buffer and result.
type direct struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	buf []byte
	n   int
	err error
}

// flushNowLocked writes the outbox in place if it was empty before the
// caller queued into it and the writer is idle (not in a write, nothing
// of its own to take): the frames are then next in line. If the socket
// takes none of it (no room, EAGAIN) or fails, it stays queued for the
// writer (the caller wakes it). It counts what it writes as the writer would: a batch taken and
// finished (acks.go), progress (stall). It reports how many bytes it
// wrote. c.omu is held.
//
// Never for a legacy or undecided agent: its writer turns the frames
// queued before the handshake ended into envelopes without omu
// (outboxQueue.convert), and a message written in place meanwhile would
// pass them.
func (c *conn) flushNowLocked() int {
	if c.dw.raw == nil || c.writing || c.closing || c.undecided || c.legacy || c.discarding ||
		len(c.conv) > 0 || c.obig != 0 || (c.slow != nil && c.slow.cut != nil) || len(c.obuf) == 0 || len(c.obuf) > directMax {
		return 0
	}
	c.dw.buf, c.dw.n, c.dw.err = c.obuf, 0, nil
	err := c.dw.raw.Write(c.dw.fn)
	n := c.dw.n
	c.dw.buf = nil
	if err != nil || c.dw.err != nil || n == 0 {
		return 0 // on an error, the writer meets it and closes the connection
	}
	if n < len(c.obuf) {
		// Cannot happen (see directMax). Were it to, the rest of the
		// frame would have to go next, and waiting for the socket to
		// take it would hold omu, and every sender to the agent, for
		// as long as the agent does not read. The connection is closed
		// as broken instead, at once: its writer and reader meet the
		// closed socket and end, as after any failed write.
		c.closing = true
		c.close()
	}
	c.wrote += uint64(n)
	c.obuf = c.obuf[:0]
	c.takes++ // a batch taken and written (acks.go)
	c.tookLocked()
	c.batches.Add(1)
	c.srv.acks.written()
	return n
}
