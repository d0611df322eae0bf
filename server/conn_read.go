package server

// Reading: an agent's frames, native or legacy, acted on in order.

import (
	"errors"
	"fmt"

	"github.com/netcluster/netcluster/internal/wire"
)

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
	for {
		if c.snd != nil && len(c.snd.bbRun.frames) > 0 && !c.nextBuffered() {
			c.flushBackbone() // before the buffer is read into (bbRun)
		}
		if c.br.Buffered() == 0 {
			if err := c.awaitInput(); err != nil {
				return c.fail(frameErr(err))
			}
		}
		c.frameStart()
		f, err := c.rd.Next()
		if err != nil {
			c.flushIn()
			c.flushBackbone() // what was routed before the bad frame
			err = c.frameDone(err)
			return c.fail(frameErr(err))
		}
		c.frameDone(nil)
		if f.Type != wire.TypeMsg && f.Type != wire.TypeSeqMsg {
			c.flushDrops() // counted before what the agent asks next (dropbatch.go)
			c.flushIn()
			c.flushBackbone()
		}
		if err := c.onFrame(f); err != nil {
			// The run aliases the read buffer, given back after; a
			// parked connection (awaitInput) had none, and is another
			// goroutine's by now.
			c.flushIn()
			c.flushBackbone()
			return c.fail(err)
		}
	}
}

// onFrame acts on one native frame. An error ends the connection; a
// *protoError is reported to the agent first (see fail).
func (c *conn) onFrame(f wire.Frame) error {
	switch f.Type {
	case wire.TypeMsg:
		return c.onMsg(f)
	case wire.TypeListen:
		return c.onListen(f.Payload)
	case wire.TypeUnlisten:
		p, err := wire.ParseListen(f.Payload)
		if err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		if c.ch.index.Remove(c, p) {
			c.patterns--
		}
	case wire.TypePing:
		tok, err := wire.ParseU64(f.Payload)
		if err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		c.sendControl(wire.AppendU64(nil, wire.TypePong, tok))
	case wire.TypePong:
	case wire.TypeRequest:
		r, err := wire.ParseRequest(f.Payload)
		if err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		return c.srv.handleRequest(c, r)
	case wire.TypeCall, wire.TypeAnswer, wire.TypeQueueListen, wire.TypeQueueUnlisten:
		if c.version < wire.VersionCalls {
			return perr(wire.CodeProtocol, "%s frame on a protocol version %d connection", wire.TypeName(f.Type), c.version)
		}
		return c.onCallFrame(f)
	case wire.TypeReplay:
		if c.version < wire.VersionCalls {
			return perr(wire.CodeProtocol, "replay frame on a protocol version %d connection", c.version)
		}
		return c.onReplay(f.Payload)
	case wire.TypeSeqMsg:
		if c.version < wire.VersionAcks {
			return perr(wire.CodeProtocol, "%s frame on a protocol version %d connection", wire.TypeName(f.Type), c.version)
		}
		return c.onSeqMsg(f)
	case wire.TypeStream, wire.TypeWatch:
		if c.version < wire.VersionGaps {
			return perr(wire.CodeProtocol, "%s frame on a protocol version %d connection", wire.TypeName(f.Type), c.version)
		}
		if f.Type == wire.TypeStream {
			return c.onStream(f.Payload)
		}
		return c.onWatch(f.Payload)
	case wire.TypeError:
		e, _ := wire.ParseError(f.Payload)
		return fmt.Errorf("agent reported error %d: %s", e.Code, e.Text)
	default:
		return perr(wire.CodeProtocol, "unexpected %s frame from an agent", wire.TypeName(f.Type))
	}
	return nil
}

// onMsg routes a message the agent emitted, once it has checked that the
// message claims this connection's channel and agent.
// The origin is checked as one comparison of bytes against the origin
// every message of this connection carries (wire.ParseMsgFrom); only a
// message that fails it is decoded field by field, to say what is wrong.
func (c *conn) onMsg(f wire.Frame) error {
	v, ok := wire.ParseMsgFrom(f.Payload, c.msgOrigin())
	if !ok {
		var err error
		if v, err = wire.ParseMsg(f.Payload); err != nil {
			return perr(wire.CodeMalformed, "%v", err)
		}
		if err := c.checkOrigin("msg", &v); err != nil {
			return err
		}
	}
	if len(v.Event) == 0 {
		return perr(wire.CodeMalformed, "msg: empty event name")
	}
	if v.Flags&wire.FlagReplayed != 0 {
		return perr(wire.CodeMalformed, "msg: the replayed flag is the server's to set")
	}
	c.msgsIn.Add(1)
	c.ch.route(c, f.Raw, &v)
	return nil
}

// msgOrigin returns what every Msg of this connection carries after its
// flags (wire.AppendOrigin), made once; nil if the names cannot be sent.
func (c *conn) msgOrigin() []byte {
	s := c.sending()
	if s.origin == nil && len(c.ch.name) <= wire.MaxNameLen && len(c.id) <= wire.MaxNameLen {
		s.origin = wire.AppendOrigin(nil, c.ch.name, c.id)
	}
	return s.origin
}

// onListen adds a listener pattern, up to maxPatterns of them.
func (c *conn) onListen(payload []byte) error {
	p, err := wire.ParseListen(payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	if c.patterns >= maxPatterns {
		return perr(wire.CodeForbidden, "too many listener patterns (limit %d)", maxPatterns)
	}
	if err := c.ch.index.Add(c, p); err != nil {
		return perr(wire.CodeBadPattern, "%v", err)
	}
	c.patterns++
	return nil
}

// readLegacy reads NUL-terminated JSON envelopes, turns each into a native
// Msg frame, and routes it.
func (c *conn) readLegacy() error {
	var scratch, frame []byte
	for {
		if c.br.Buffered() == 0 {
			if err := c.awaitInput(); err != nil {
				return c.fail(err)
			}
		}
		b, err := c.readEnvelope(c.srv.limits.Load().maxFrame, &scratch)
		if err != nil {
			if errors.Is(err, wire.ErrLegacyTooLarge) {
				return c.fail(perr(wire.CodeTooLarge, "%v", err))
			}
			return c.fail(err) // a *protoError is told to the agent
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
