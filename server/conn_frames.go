package server

// Frames in progress: what the server holds of frames (and legacy
// envelopes) larger than a connection's read buffer while they arrive is
// bounded over the whole server (partialframes), and each such frame must
// arrive in time.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	c.flushDrops() // all read is acted on (dropbatch.go)
	c.flushIn()    // and counted and acknowledged (acks.go)
	if c.tryRead {
		return c.readNow(p) // between frames: no partial frame is charged
	}
	n, err := c.nc.Read(p)
	if c.bigLeft > 0 && n > 0 {
		k := min(n, c.bigLeft)
		if !c.srv.chargePartial(k) {
			return n, errPartialBudget
		}
		c.bigLeft -= k
		c.charged += k
	}
	return n, err
}

// chargePartial charges k bytes of a frame in progress to the server's
// budget of partial frames, unless they would pass it: then it charges
// nothing and reports false. What is charged thus never passes the
// budget, not even for the moment before a refusal (adding first and
// taking back once over let concurrent readers see, and be refused for,
// another's chunk that was never kept).
func (s *Server) chargePartial(k int) bool {
	limit := int64(s.limits.Load().partialFrames)
	for {
		held := s.partial.Load()
		if held+int64(k) > limit {
			return false
		}
		if s.partial.CompareAndSwap(held, held+int64(k)) {
			return true
		}
	}
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

// readEnvelope reads one legacy envelope, without its NUL, as
// wire.ReadLegacy does, charging what it holds of an envelope larger than
// the read buffer to the partial frame budget while it arrives, and
// giving the envelope the deadline a frame of its size has so far. The
// result is valid until the next read.
func (c *conn) readEnvelope(max int, scratch *[]byte) ([]byte, error) {
	line, err := c.br.ReadSlice(0)
	switch {
	case err == nil && len(line)-1 > max:
		return nil, fmt.Errorf("%w: no NUL within %d bytes", wire.ErrLegacyTooLarge, max)
	case err == nil:
		return line[:len(line)-1], nil
	case err != bufio.ErrBufferFull:
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	start := time.Now()
	buf := (*scratch)[:0]
	defer func() {
		c.srv.partial.Add(-int64(c.charged))
		c.charged = 0
		c.nc.SetReadDeadline(time.Time{})
	}()
	for {
		if !c.srv.chargePartial(len(line)) {
			*scratch = nil
			c.ch.stats.frames.Add(1)
			return nil, perr(wire.CodeTooLarge, "legacy message refused after %d bytes: messages in progress on this server hold its budget (partialframes %d bytes)", len(buf)+len(line), c.srv.limits.Load().partialFrames)
		}
		c.charged += len(line)
		buf = append(buf, line...)
		if len(buf) > max {
			*scratch = nil
			return nil, fmt.Errorf("%w: no NUL within %d bytes", wire.ErrLegacyTooLarge, max)
		}
		c.nc.SetReadDeadline(start.Add(frameTimeout(len(buf) + c.br.Size())))
		line, err = c.br.ReadSlice(0)
		switch {
		case err == nil:
			buf = append(buf, line...)
			if cap(buf) <= 4*c.br.Size() {
				*scratch = buf // keep only a small buffer for reuse
			} else {
				*scratch = nil
			}
			if len(buf)-1 > max {
				return nil, fmt.Errorf("%w: no NUL within %d bytes", wire.ErrLegacyTooLarge, max)
			}
			return buf[:len(buf)-1], nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.ch.stats.frames.Add(1)
			return nil, perr(wire.CodeProtocol, "legacy message not received in time: %d bytes in %v", len(buf)+len(line), time.Since(start).Round(time.Millisecond))
		case err != bufio.ErrBufferFull:
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}
