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
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

// closeTimeout bounds closing an agent.
const closeTimeout = 2 * time.Second

// client holds what the commands share: the options, where output goes,
// and the control agent, connected on first use.
type client struct {
	o    *options
	dir  string    // the socket directory
	out  io.Writer // command output: stdout, or the terminal in the REPL
	errw io.Writer // notices and errors in the REPL

	// ctlOpts are extra options of the control agent; the REPL's make it
	// reconnect, and set reconnects.
	ctlOpts    []netcluster.Option
	reconnects bool
	ctl        *netcluster.Agent
}

func newClient(o *options, stdout, stderr io.Writer) *client {
	dir := o.socketDir
	if dir == "" {
		dir = new(config.Config).ResolveSocketDir()
	}
	return &client{o: o, dir: dir, out: stdout, errw: stderr,
		ctlOpts: []netcluster.Option{netcluster.WithoutReconnect()}}
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

// control returns the control agent, connecting it the first time.
func (c *client) control(ctx context.Context) (*netcluster.Agent, error) {
	if c.ctl != nil {
		return c.ctl, nil
	}
	a, err := netcluster.Connect(ctx, config.ControlChannel, c.agentOptions(c.ctlOpts...)...)
	if err != nil {
		return nil, err
	}
	c.ctl = a
	return a, nil
}

// request sends a control request and returns the result of a successful
// reply; an error reply becomes an error. While the control agent is
// reconnecting (in the REPL, after a server restart) it waits for the
// connection, within the timeout.
func (c *client) request(ctx context.Context, req server.ControlRequest) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	a, err := c.control(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	b, err := a.Request(ctx, body)
	for range 2 {
		if !c.reconnects || !errors.Is(err, netcluster.ErrNotConnected) {
			break
		}
		// Flush waits for the agent to reconnect.
		if err = a.Flush(ctx); err == nil {
			b, err = a.Request(ctx, body)
		}
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("no reply from the server within %v (%v)", c.o.timeout, err)
		}
		return nil, err
	}
	var rep server.ControlReply
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("unreadable reply from the server: %v", err)
	}
	if !rep.OK {
		return nil, errors.New(rep.Error)
	}
	return rep.Result, nil
}

// close closes the control agent, if connected.
func (c *client) close() {
	if c.ctl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	c.ctl.Close(ctx)
	c.ctl = nil
}
