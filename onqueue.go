package netcluster

import (
	"errors"
	"fmt"
	"maps"

	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/router"
	"github.com/netcluster/netcluster/internal/wire"
)

// OnQueue adds a queue listener: handler is called for the messages whose
// event name pattern matches that the server gives to this member of the
// queue group group. Of each such message (event or request), emitted on
// the channel or propagated to it, exactly one member of each group gets
// it, while plain listeners (On) get it as usual. A group is the queue
// listeners with the same group name and pattern on the agents of one
// channel; the server picks members in turn, passing over a member whose
// outbox is nearly full. The agent's own messages and requests may come
// back to its own queue listeners.
//
// Messages the server had queued for a member that leaves (Off, Close, a
// lost connection) and not yet written to it go to another member; those
// already written are the member's, so delivery within a group is at most
// once. docs/PROTOCOL.md (section 11) states the guarantees exactly.
//
// group is 1 to 64 letters, digits, '.', '_' or '-'. OnQueue returns
// ErrUnsupported if the server does not support queue groups.
func (a *Agent) OnQueue(pattern, group string, handler Handler) (*Listener, error) {
	if handler == nil {
		return nil, errors.New("netcluster: nil handler")
	}
	if len(pattern) > wire.MaxPatternLen {
		return nil, fmt.Errorf("netcluster: listener pattern of %d bytes; the limit is %d", len(pattern), wire.MaxPatternLen)
	}
	if _, err := router.Compile(pattern); err != nil {
		return nil, err
	}
	if p := qgroup.NameProblem(group); p != "" {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidGroup, group, p)
	}
	l := &Listener{agent: a, pattern: pattern, handler: handler, group: group}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return nil, ErrClosed
	}
	if a.version != 0 && a.version < wire.VersionCalls {
		return nil, fmt.Errorf("%w (it speaks protocol version %d)", ErrUnsupported, a.version)
	}
	a.nextSID++
	l.sid = a.nextSID
	qs := maps.Clone(a.queueListeners())
	if qs == nil {
		qs = make(map[uint32]*Listener, 1)
	}
	qs[l.sid] = l
	a.qls.Store(&qs)
	if a.nc != nil {
		a.queueFrame(wire.AppendQueueListen(a.out, l.queueListen()))
	}
	return l, nil
}

func (l *Listener) queueListen() wire.QueueListen {
	return wire.QueueListen{SID: l.sid, Group: l.group, Pattern: l.pattern}
}

// queueListeners returns the agent's queue listeners by sid; the map must
// not be modified.
func (a *Agent) queueListeners() map[uint32]*Listener {
	if p := a.qls.Load(); p != nil {
		return *p
	}
	return nil
}

// removeQueueListener undoes OnQueue. Call with mu held.
func (a *Agent) removeQueueListenerLocked(l *Listener) {
	qs := maps.Clone(a.queueListeners())
	delete(qs, l.sid)
	a.qls.Store(&qs)
	if a.nc != nil && !a.closing {
		a.queueFrame(wire.AppendQueueUnlisten(a.out, l.sid))
	}
}

// appendQueueListens appends a QueueListen frame for every queue
// listener, for a new connection.
func (a *Agent) appendQueueListens(dst []byte) []byte {
	for _, l := range a.queueListeners() {
		dst = wire.AppendQueueListen(dst, l.queueListen())
	}
	return dst
}

// handleQueued runs the queue listener a message was given to. A message
// for a listener removed meanwhile is discarded: the server wrote it to
// this agent, so it is no one else's (at most once).
func (a *Agent) handleQueued(it item) {
	l := a.queueListeners()[it.sid]
	if l == nil || l.off.Load() {
		a.log.Debug("message for a removed queue listener discarded", "channel", a.channel, "event", it.msg.Event, "sid", it.sid)
		return
	}
	l.handler(it.msg)
}
