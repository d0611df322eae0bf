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
// The warning names the agent by id, read here: an undecided connection
// gets its id when it turns legacy, under omu.
func (c *conn) dropWarnDue(now time.Time) (w dropWarnDueInfo, due bool) {
	dw := &c.dropWarn
	if !dw.at.IsZero() && now.Sub(dw.at) < dropWarnEvery {
		return w, false
	}
	total := c.dropped.Load()
	w.since, w.id = total-dw.warned, c.id
	dw.at, dw.warned = now, total
	return w, true
}

// dropWarnDueInfo is what a due warning says.
type dropWarnDueInfo struct {
	since uint64 // drops since the last warning
	id    string
}

// warnDropped logs that messages were dropped for the agent because it
// reads too slowly.
func (c *conn) warnDropped(w dropWarnDueInfo) {
	c.srv.log.Warn("slow consumer: messages dropped", "channel", c.ch.name, "agent", w.id,
		"dropped", w.since, "dropped_total", c.dropped.Load(), "outbuffer", c.srv.limits.Load().outBuffer,
		"next_warning_in", dropWarnEvery)
}
