package server

// The read buffer: lent to a connection while its agent is sending, and
// given back while it waits between frames with nothing buffered, so that
// a server holding many idle agents holds no read buffer for them (S8:
// 1,000 idle agents cost 32 KiB of heap each, and the pages of it that
// their handshakes touched, before).

import (
	"bufio"
	"errors"
	"sync"

	"github.com/netcluster/netcluster/internal/wire"
)

// input is a read buffer and the frame reader over it.
type input struct {
	br *bufio.Reader
	rd *wire.Reader
}

// inputs holds the read buffers of the connections that wait.
var inputs = sync.Pool{New: func() any {
	br := bufio.NewReaderSize(nil, readBufSize)
	return &input{br: br, rd: wire.NewReader(br, wire.DefaultMaxFrame)}
}}

// errNoInput is what a read tried without waiting (tryRead) returns when
// the agent has sent nothing more; errParked is what the reader returns
// once it parked the connection (conn_park_linux.go).
var (
	errNoInput = errors.New("nothing to read yet")
	errParked  = errors.New("parked")
)

// takeInput lends the connection a read buffer: c.br, and c.rd over it
// (with the connection's frame limit, maxFrame). Only the reader calls it.
func (c *conn) takeInput() {
	in := inputs.Get().(*input)
	in.br.Reset(frameReader{c})
	in.rd.SetMax(c.maxFrame)
	c.in, c.br, c.rd = in, in.br, in.rd
	c.srv.inputs.Add(1)
}

// giveInput gives the read buffer back. What it held must have been
// acted on: the frames read from it alias it. Only the reader calls it.
func (c *conn) giveInput() {
	if c.in == nil {
		return
	}
	c.in.br.Reset(nil)
	inputs.Put(c.in)
	c.in, c.br, c.rd = nil, nil, nil
	c.srv.inputs.Add(-1)
}

// awaitInput is called by the reader between frames when nothing is
// buffered: it tries a read without waiting and, if the agent has sent
// nothing, gives the read buffer back while it waits for the socket to
// become readable, then takes one again; or, after parkAfter, parks the
// connection and returns errParked. An error is the read's (the agent
// closed the connection, say). On a socket that cannot be waited on that
// way (not a Unix socket) it returns at once and the next read waits with
// the buffer, as before.
func (c *conn) awaitInput() error {
	if !c.canAwait() {
		return nil
	}
	c.tryRead = true
	_, err := c.br.Peek(1)
	c.tryRead = false
	if !errors.Is(err, errNoInput) {
		return err // nil: bytes arrived
	}
	c.giveInput()
	parked, err := c.waitOrPark()
	if parked {
		return errParked
	}
	c.takeInput()
	return err
}

// resume goes on reading a parked connection, in a goroutine of its own,
// and ends the connection when its reader does.
func (c *conn) resume() {
	c.takeInput()
	if !c.serveFrames() {
		c.ch.ended(c, true)
	}
}
