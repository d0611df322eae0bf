package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/transport"
)

// client holds what the commands share: the options, where output goes,
// and the control client, connected on first use.
type client struct {
	o    *options
	dir  string    // the socket directory
	out  io.Writer // command output: stdout, or the terminal in the REPL
	errw io.Writer // notices and errors in the REPL
	in   io.Reader // stdin: top's keys, emit's "-"
	// inREPL: commands run in the REPL, which owns stdin.
	inREPL bool
	// keys is the terminal REPL's Ctrl-C handling; nil elsewhere.
	keys *keys
	// down: the REPL's control connection is lost (its OnState said so).
	down atomic.Bool

	// ctlOpts are the options of the control client; the REPL's make it
	// reconnect.
	ctlOpts control.Options
	ctl     *control.Client
}

func newClient(o *options, stdout, stderr io.Writer) *client {
	dir := o.socketDir
	if dir == "" {
		dir = new(config.Config).ResolveSocketDir()
	}
	return &client{o: o, dir: dir, out: stdout, errw: stderr}
}

// agentID names an agent of this process: ncclient-PID-RANDOM, so that
// showchannel tells operators what it is.
func agentID() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("ncclient-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
}

// agentOptions are the options of every agent ncclient connects.
func (c *client) agentOptions(extra ...netcluster.Option) []netcluster.Option {
	return append([]netcluster.Option{netcluster.WithSocketDir(c.dir), netcluster.WithAgentID(agentID())}, extra...)
}

// controlPath is the control channel's socket.
func (c *client) controlPath() string { return transport.SocketPath(c.dir, control.Channel) }

// control returns the control client, connecting it the first time.
func (c *client) control(ctx context.Context) (*control.Client, error) {
	if c.ctl != nil {
		return c.ctl, nil
	}
	o := c.ctlOpts
	o.AgentID = agentID()
	o.Dial = transport.Dial
	cl, err := control.Dial(ctx, c.controlPath(), &o)
	if err != nil {
		return nil, err
	}
	c.ctl = cl
	return cl, nil
}

// request sends a control request and returns the result of a successful
// reply; an error reply becomes an error. While the control client is
// reconnecting (in the REPL, after a server restart) it waits for the
// connection, within the timeout.
func (c *client) request(parent context.Context, req control.Request) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(parent, c.o.timeout)
	defer cancel()
	res, err := c.requestWithin(ctx, req)
	if err != nil && ctx.Err() != nil && parent.Err() == nil && errors.Is(err, ctx.Err()) {
		// Our own bound ended it, not the caller (Ctrl-C keeps its error).
		return nil, fmt.Errorf("no reply from the server within %v (%v)", c.o.timeout, err)
	}
	return res, err
}

func (c *client) requestWithin(ctx context.Context, req control.Request) (json.RawMessage, error) {
	cl, err := c.control(ctx)
	if err != nil {
		return nil, err
	}
	if c.down.Load() {
		// The client would wait for the server until the timeout: fail
		// now if nothing listens on the socket.
		if err := probe(ctx, c.controlPath()); err != nil {
			return nil, fmt.Errorf("the server is not running: %w", err)
		}
	}
	return cl.Do(ctx, req)
}

// probeTimeout bounds probe.
const probeTimeout = 500 * time.Millisecond

// probe reports whether something accepts connections on the socket at
// path.
func probe(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	nc, err := transport.Dial(ctx, path)
	if err != nil {
		return err
	}
	return nc.Close()
}

// close closes the control client, if connected.
func (c *client) close() {
	if c.ctl == nil {
		return
	}
	c.ctl.Close()
	c.ctl = nil
}
