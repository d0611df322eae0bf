package netcluster

// State is the state of an Agent's connection.
type State int

const (
	// Connected: the agent has a connection to the server.
	Connected State = iota + 1
	// Disconnected: the connection ended; the agent is reconnecting.
	Disconnected
	// Closed: the agent is closed for good.
	Closed
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// notifier wakes every goroutine waiting for some change. It allocates a
// channel only when somebody waits.
type notifier struct {
	ch chan struct{}
}

// wait returns a channel closed at the next broadcast. Call it with the
// lock that guards the condition held.
func (n *notifier) wait() <-chan struct{} {
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// broadcast wakes the waiters. Call it with the same lock held.
func (n *notifier) broadcast() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
