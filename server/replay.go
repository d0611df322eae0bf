package server

// Replay: an agent asks for the stored history of its durable channel
// (wire.TypeReplay). The server reads the channel's JetStream stream and
// sends the matching messages, marked wire.FlagReplayed, then a
// ReplayEnd; a failure is a ReplayEnd with the error's text.

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/router"
	"github.com/netcluster/netcluster/internal/wire"
)

// replayTimeout bounds one replay.
const replayTimeout = 30 * time.Second

// onReplay answers a Replay frame. It runs on the reader: the agent's
// next frames are read once the replay is complete.
func (c *conn) onReplay(payload []byte) error {
	r, err := wire.ParseReplay(payload)
	if err != nil {
		return perr(wire.CodeMalformed, "%v", err)
	}
	end := wire.ReplayEnd{ID: r.ID}
	msgs, err := c.replay(r)
	if err != nil {
		end.Err = err.Error()
	} else {
		for i := range msgs {
			c.sendControl(replayFrame(&msgs[i]))
		}
		end.Count = uint32(len(msgs))
	}
	c.sendControl(wire.AppendReplayEnd(nil, end))
	return nil
}

func (c *conn) replay(r wire.Replay) ([]backbone.Stored, error) {
	p, err := router.Compile(r.Pattern)
	if err != nil {
		return nil, err
	}
	n := int(r.Last)
	if n == 0 || n > wire.MaxReplay {
		n = wire.MaxReplay
	}
	var since time.Time
	if r.Since > 0 {
		since = time.Unix(0, r.Since)
	}
	bb := c.srv.bb.Load()
	if bb == nil {
		return nil, errors.New("netcluster: replay of channel " + c.ch.name + ": no NATS backbone on this server (connecttonet and nats)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.done:
		case <-bb.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	// The listener is registered (its Listen came first): what this
	// server's agents routed before, and have not handed to the backbone
	// yet, is handed over before the backbone waits for it to be stored.
	if err := c.srv.waitHandedOver(ctx, c); err != nil {
		return nil, err
	}
	msgs, err := bb.b.Replay(ctx, c.ch.name, n, since, func(frame []byte) bool {
		v, err := wire.ParseMsg(frame[wire.HeaderLen:])
		return err == nil && p.MatchBytes(v.Event)
	})
	if errors.Is(err, backbone.ErrNotDurable) {
		return nil, errors.New("netcluster: replay of channel " + c.ch.name + ": not a durable channel")
	}
	return msgs, err
}

// replayFrame is the Msg frame a stored message is sent as: flagged
// replayed, its Node the publishing server's id ("" for this server).
func replayFrame(s *backbone.Stored) []byte {
	v, err := wire.ParseMsg(s.Frame[wire.HeaderLen:])
	if err != nil {
		return nil
	}
	m := v.Msg()
	m.Flags |= wire.FlagReplayed
	if !s.Local {
		m.Node = hex.EncodeToString(s.Node[:])
	}
	return wire.AppendMsg(nil, &m)
}

// waitHandedOver waits until every connection but self whose reader held
// messages routed for the backbone and not handed over (bbGen odd, see
// backboneBusy) when it was called has handed them over or ended, or ctx
// ends. A reader holds them for no longer than it takes to route one read
// buffer, or a pause for a slow recipient or for NATS (bounded).
func (s *Server) waitHandedOver(ctx context.Context, self *conn) error {
	type held struct {
		c   *conn
		gen uint64
	}
	var wait []held
	if m := s.byName.Load(); m != nil {
		for _, ch := range *m {
			ch.anyMember(func(c *conn) bool {
				if g := c.bbGen.Load(); c != self && g&1 == 1 {
					wait = append(wait, held{c, g})
				}
				return false
			})
		}
	}
	for _, h := range wait {
		for h.c.bbGen.Load() == h.gen {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-h.c.done:
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
	}
	return nil
}
