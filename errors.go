package netcluster

import (
	"errors"
	"fmt"
)

// Errors returned by an Agent.
var (
	// ErrClosed is returned by the methods of a closed Agent.
	ErrClosed = errors.New("netcluster: agent closed")
	// ErrBufferFull is returned by Emit while the agent is disconnected and
	// its buffer of unsent messages is full.
	ErrBufferFull = errors.New("netcluster: emit buffer full while disconnected")
	// ErrTooLarge is returned by Emit for a message larger than the
	// server's maximum frame size.
	ErrTooLarge = errors.New("netcluster: message too large")
	// ErrInvalidEvent is returned by Emit for an empty or too long event
	// name.
	ErrInvalidEvent = errors.New("netcluster: invalid event name")
	// ErrNotConnected is returned by calls that need a connection when the
	// agent has none for good: Emit, Flush or Close after the connection
	// ended with WithoutReconnect.
	ErrNotConnected = errors.New("netcluster: not connected")
)

// ServerError is an error the server reported before closing the
// connection: a protocol problem, a slow-consumer disconnect, a shutdown.
type ServerError struct {
	Code uint16 // one of the wire error codes, see docs/PROTOCOL.md
	Text string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("netcluster: server closed the connection: %s (code %d)", e.Text, e.Code)
}

// DroppedError reports messages the server dropped for this agent because
// the agent did not read fast enough. It reaches the error handler (see
// WithErrorHandler) in stream order: the messages were dropped just before
// the next message the handlers see.
type DroppedError struct {
	Count uint64
}

func (e *DroppedError) Error() string {
	return fmt.Sprintf("netcluster: the server dropped %d messages for this slow agent", e.Count)
}
