package server

// Frames in progress: what the server holds of frames larger than a
// connection's read buffer while they arrive is bounded over the whole
// server (partialframes), and each such frame must arrive in time.

import (
	"encoding/binary"
	"errors"
	"os"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A frame larger than the read buffer must arrive within frameGrace plus
// one second per frameRate bytes of it.
const (
	frameGrace = 5 * time.Second
	frameRate  = 1 << 20
)

var errPartialBudget = errors.New("partial frame budget exhausted")

// frameReader is the socket as a connection's reader sees it: while a
// frame larger than the read buffer arrives, the bytes read for it are
// charged to the server's budget of partial frames, and a read that would
// pass the budget fails.
type frameReader struct{ c *conn }

func (r frameReader) Read(p []byte) (int, error) {
	c := r.c
	n, err := c.nc.Read(p)
	if c.bigLeft > 0 && n > 0 {
		k := min(n, c.bigLeft)
		c.bigLeft -= k
		c.charged += k
		if c.srv.partial.Add(int64(k)) > int64(c.srv.limits.Load().partialFrames) {
			return n, errPartialBudget
		}
	}
	return n, err
}

// frameStart looks at the next frame's header, once it is there: for a
// frame larger than the read buffer it starts charging its bytes, and sets
// the deadline by which it must have arrived.
func (c *conn) frameStart() {
	hdr, err := c.br.Peek(wire.LenSize)
	if err != nil {
		return // Next reports it
	}
	size := wire.LenSize + int(binary.BigEndian.Uint32(hdr))
	if size <= c.br.Size() || size-wire.LenSize > c.srv.limits.Load().maxFrame {
		return
	}
	c.big, c.bigLeft = size, size-c.br.Buffered()
	c.nc.SetReadDeadline(time.Now().Add(frameTimeout(size)))
}

func frameTimeout(size int) time.Duration {
	return frameGrace + time.Duration(size/frameRate)*time.Second
}

// frameDone gives back what the frame was charged, and turns err, the
// reader's error for it, into what the agent is told: a frame that passed
// the budget or its deadline is refused and counted.
func (c *conn) frameDone(err error) error {
	if c.big == 0 {
		return err
	}
	size := c.big
	c.srv.partial.Add(-int64(c.charged))
	c.big, c.bigLeft, c.charged = 0, 0, 0
	c.nc.SetReadDeadline(time.Time{})
	switch {
	case errors.Is(err, errPartialBudget):
		c.ch.stats.frames.Add(1)
		return perr(wire.CodeTooLarge, "frame of %d bytes refused: frames in progress on this server hold its budget (partialframes %d bytes)", size, c.srv.limits.Load().partialFrames)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.ch.stats.frames.Add(1)
		return perr(wire.CodeProtocol, "frame of %d bytes not received within %v", size, frameTimeout(size))
	}
	return err
}
