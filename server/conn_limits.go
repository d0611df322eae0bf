package server

// Limits on what agents may hold: connections (in all, per channel, per
// user), and the bytes of frames still arriving.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// refuseWait is how long a refused connection has to show its wire: a
// native agent writes its preamble at once; one silent that long is told
// in the legacy format.
const refuseWait = 500 * time.Millisecond

// connCounts are the connections held, by user (uid from the peer
// credentials; connections without one are not counted by user).
type connCounts struct {
	total int
	byUID map[int]int
}

// admitLocked counts c in, or returns why it is refused (the limit named
// by its configuration key). s.liveMu is held.
func (s *Server) admitLocked(c *conn) *protoError {
	lim := s.limits.Load()
	refuse := func(format string, args ...any) *protoError {
		c.ch.stats.refused.Add(1)
		return &protoError{code: wire.CodeForbidden, text: "connection refused: " + fmt.Sprintf(format, args...)}
	}
	switch {
	case s.counts.total >= lim.maxConns:
		return refuse("the server holds %d connections (maxconnections %d)", s.counts.total, lim.maxConns)
	case c.ch.nconns >= lim.maxChanConns:
		return refuse("channel %q holds %d connections (maxchannelconnections %d)", c.ch.name, c.ch.nconns, lim.maxChanConns)
	case c.uid >= 0 && s.counts.byUID[c.uid] >= lim.maxUIDConns:
		return refuse("uid %d holds %d connections (maxuidconnections %d)", c.uid, s.counts.byUID[c.uid], lim.maxUIDConns)
	}
	s.counts.total++
	c.ch.nconns++
	if c.uid >= 0 {
		s.counts.byUID[c.uid]++
	}
	return nil
}

// releaseLocked counts c out. s.liveMu is held.
func (s *Server) releaseLocked(c *conn) {
	s.counts.total--
	c.ch.nconns--
	if c.uid >= 0 {
		if s.counts.byUID[c.uid]--; s.counts.byUID[c.uid] <= 0 {
			delete(s.counts.byUID, c.uid)
		}
	}
}

// refuseConn tells a connection over a limit why it is refused, in its
// wire (an Error frame, or the legacy nc-error event), and closes it.
func (c *conn) refuseConn(pe *protoError) {
	defer c.close()
	if held, ok := c.srv.warns.allow(time.Now()); ok {
		c.srv.log.Warn("connection refused", "channel", c.ch.name, "uid", c.uid, "pid", c.pid, "err", pe.text, "warnings_held", held)
	}
	c.nc.SetReadDeadline(time.Now().Add(refuseWait))
	first, err := bufio.NewReaderSize(c.nc, 16).Peek(1)
	var msg []byte
	switch {
	case err == nil && !wire.IsLegacyStart(first[0]):
		msg = wire.AppendError(nil, wire.Error{Code: pe.code, Text: pe.text})
	case err == nil || isTimeout(err):
		msg = appendLegacyError(nil, pe)
	default:
		return // gone already
	}
	c.nc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	c.nc.Write(msg)
}

// warnLimiter lets one warning through per warnEvery, over the whole
// server, and counts those it held back: a flood of slow consumers or
// refused connections must not flood the log.
type warnLimiter struct {
	mu   sync.Mutex
	next time.Time
	held int
}

const warnEvery = 100 * time.Millisecond

func (w *warnLimiter) allow(now time.Time) (held int, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Before(w.next) {
		w.held++
		return 0, false
	}
	held, w.held = w.held, 0
	w.next = now.Add(warnEvery)
	return held, true
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
