package server

// The handshake: which wire an agent speaks, its Hello, joining the channel.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

const (
	handshakeTimeout = 10 * time.Second
	legacyWait       = 2 * time.Second // silence that marks a listening legacy agent
)

// validAgentID reports whether id is 1 to 64 letters, digits, '.', '_'
// or '-' (ASCII). A loop, not the regexp ^[A-Za-z0-9._-]{1,64}$: compiling
// that at start-up made 860 allocations, 60 KB, in every process that
// links the server.
func validAgentID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// handshake tells the two wires apart by the first byte and, for the
// native one, reads the preamble and Hello and answers with Welcome.
func (c *conn) handshake(br *bufio.Reader) error {
	defer c.nc.SetReadDeadline(time.Time{})
	// A native agent writes its preamble at once; an agent of the Node
	// original writes nothing until it emits. One silent for legacyWait
	// is taken for a legacy agent that only listens. Until the wire is
	// known the connection listens to everything, as a legacy agent
	// would, and what is routed to it waits in its outbox.
	c.omu.Lock()
	c.undecided = true
	c.omu.Unlock()
	c.ch.index.Add(c, ".*")
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
	c.notLegacy()
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
	c.rd.SetMax(c.maxFrame)
	c.frameStart()
	f, err := c.rd.Next()
	if err != nil {
		return c.refuse(frameErr(c.frameDone(err)))
	}
	c.frameDone(nil)
	if f.Type != wire.TypeHello {
		return c.refuse(perr(wire.CodeProtocol, "expected hello, got %s", wire.TypeName(f.Type)))
	}
	h, err := wire.ParseHello(f.Payload)
	switch {
	case err != nil:
		return c.refuse(perr(wire.CodeMalformed, "%v", err))
	case h.Version < wire.Version:
		return c.refuse(perr(wire.CodeVersion, "protocol version %d is not supported; this server speaks %d to %d", h.Version, wire.Version, wire.VersionGaps))
	case h.Channel != c.ch.name:
		return c.refuse(perr(wire.CodeBadHello, "this socket serves channel %q, hello names %q", c.ch.name, h.Channel))
	case !validAgentID(h.AgentID):
		return c.refuse(perr(wire.CodeBadHello, "invalid agent id %q: want 1 to 64 letters, digits, '.', '_' or '-'", h.AgentID))
	}
	c.omu.Lock()
	c.id, c.hellopid = h.AgentID, int(h.PID)
	if c.pid < 0 {
		c.pid = c.hellopid
	}
	// Under omu: the connection has been reachable by deliver since the
	// handshake began (it listens to everything while undecided).
	c.version = min(h.Version, wire.VersionGaps)
	c.obuf = wire.AppendWelcome(c.obuf[:0], wire.Welcome{
		Version:  c.version,
		MaxFrame: uint32(c.srv.limits.Load().maxFrame),
		ServerID: c.srv.nodeID,
	})
	c.discarding = false
	c.omu.Unlock()
	return c.join()
}

func (c *conn) joinLegacy() error {
	id := fmt.Sprintf("legacy-%d", c.srv.nextID.Add(1))
	c.omu.Lock() // a drop's warning reads it (dropWarnDue)
	c.id = id
	c.omu.Unlock()
	// A legacy agent cannot say what it listens to: it gets everything
	// routed to its channel, as in the original, from its first moment
	// (the index has it since handshake began).
	c.toLegacy()
	return c.join()
}

// toLegacy makes c a legacy connection. The messages queued while its
// wire was unknown stay Msg frames, in conv: the writer turns them into
// envelopes a batch at a time, as the agent reads them (outboxQueue.Take).
// Senders go on delivering, as envelopes, after those. The writer is not
// running yet.
func (c *conn) toLegacy() {
	c.omu.Lock()
	c.conv, c.convGone, c.obuf, c.told = c.obuf, 0, nil, c.dropped.Load()
	if len(c.conv) == 0 {
		c.conv = nil
	}
	c.legacy, c.undecided = true, false
	if lim := c.srv.limits.Load(); c.queuedLocked() > lim.outBuffer/4*3 {
		// Its writer will write a socket buffer of it whether the agent
		// reads or not: that progress says nothing of the agent, and a
		// sender pausing for it would pause in vain, once for each such
		// agent (100 silent connections spent a sender's whole credit
		// as they turned legacy). It is not paused for until its writer
		// has written more than that (tookLocked).
		c.stalled = true
		c.unproven = c.wrote + uint64(unprovenBufs*c.sockBuf())
	}
	if c.full.Load() != 0 {
		// Still full since its writer last took (it has yet to run), its
		// room now measured for envelopes: what does not fit is dropped
		// without omu, and acknowledgements do not wait for it.
		c.markFullLocked(c.srv.limits.Load())
	}
	c.omu.Unlock()
}

// notLegacy discards what was queued for c while its wire was unknown,
// and stops it listening to everything: a native agent says what it
// listens to. Deliveries still on their way are dropped until the Welcome
// is queued.
func (c *conn) notLegacy() {
	c.omu.Lock()
	c.undecided, c.discarding = false, true
	c.obuf, c.obig, c.told = c.obuf[:0], 0, c.dropped.Load()
	c.clearFull()
	c.omu.Unlock()
	c.ch.index.RemoveAll(c)
}

func (c *conn) join() error {
	replaced, ok := c.ch.join(c)
	if !ok {
		c.ch.index.RemoveAll(c)
		return c.refuse(perr(wire.CodeChannelGone, "channel %q is closing", c.ch.name))
	}
	c.omu.Lock()
	c.joined.Store(true) // acknowledgements wait for members (acks_round.go)
	c.omu.Unlock()
	c.ackMark()
	if c.legacy {
		// It listens (to everything) from before it joined, and a
		// durable channel consumes for members only (interestLoop).
		c.srv.interestChanged()
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
