package server

import "time"

// dropWarnEvery is the least time between two warnings about messages
// dropped for one slow agent: a burst of drops is one log line, not one
// per message.
const dropWarnEvery = 10 * time.Second

// dropWarning holds an agent's drop warnings' state, under its conn's omu.
type dropWarning struct {
	at     time.Time // of the last warning
	warned uint64    // drops counted at the last warning
}

// dropWarnDue reports whether a warning about drops is due at now, at most
// once per dropWarnEvery for the agent, and the drops since the last one.
// Called with c.omu held; log with warnDropped after unlocking.
func (c *conn) dropWarnDue(now time.Time) (since uint64, due bool) {
	w := &c.dropWarn
	if !w.at.IsZero() && now.Sub(w.at) < dropWarnEvery {
		return 0, false
	}
	total := c.dropped.Load()
	since = total - w.warned
	w.at, w.warned = now, total
	return since, true
}

// warnDropped logs that messages were dropped for the agent because it
// reads too slowly.
func (c *conn) warnDropped(since uint64) {
	c.srv.log.Warn("slow consumer: messages dropped", "channel", c.ch.name, "agent", c.id,
		"dropped", since, "dropped_total", c.dropped.Load(), "outbuffer", c.srv.limits.Load().outBuffer,
		"next_warning_in", dropWarnEvery)
}
