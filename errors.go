package netcluster

import (
	"errors"
	"fmt"

	"github.com/netcluster/netcluster/internal/wire"
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
	// ErrInvalidOption is returned by Connect for an option whose value
	// cannot work; the error names the option.
	ErrInvalidOption = errors.New("netcluster: invalid option")
)

// The errors a server reports, one per error code of the protocol
// (docs/PROTOCOL.md). A *ServerError matches its code's with errors.Is:
//
//	var err error // from WithErrorHandler, WithStateHandler or Connect
//	if errors.Is(err, netcluster.ErrSlowConsumer) { ... }
var (
	// ErrMalformed: the server could not decode a frame of this agent's.
	ErrMalformed = errors.New("netcluster: malformed frame")
	// ErrProtocol: a frame arrived where the protocol does not allow it.
	ErrProtocol = errors.New("netcluster: protocol error")
	// ErrVersion: the server does not speak this agent's protocol version.
	ErrVersion = errors.New("netcluster: unsupported protocol version")
	// ErrBadHello: the server refused the hello: the channel is not the
	// socket's, or the agent id is not valid.
	ErrBadHello = errors.New("netcluster: hello refused")
	// ErrBadPattern: a listener pattern does not compile on the server.
	ErrBadPattern = errors.New("netcluster: invalid listener pattern")
	// ErrOrigin: a message claimed another channel or agent.
	ErrOrigin = errors.New("netcluster: message of another origin")
	// ErrSlowConsumer: the server disconnected the agent because its
	// outbound buffer for it was full (slowconsumer "disconnect").
	ErrSlowConsumer = errors.New("netcluster: slow consumer")
	// ErrShutdown: the server is shutting down.
	ErrShutdown = errors.New("netcluster: server shutting down")
	// ErrChannelGone: a reload removed the agent's channel.
	ErrChannelGone = errors.New("netcluster: channel removed")
	// ErrForbidden: the request is not allowed on this connection.
	ErrForbidden = errors.New("netcluster: forbidden")
	// ErrBadRequest: a control request failed.
	ErrBadRequest = errors.New("netcluster: bad request")
)

// codeErrors maps each protocol error code to its error. A frame too
// large for the server is ErrTooLarge, as for Emit.
var codeErrors = map[uint16]error{
	wire.CodeMalformed:    ErrMalformed,
	wire.CodeTooLarge:     ErrTooLarge,
	wire.CodeProtocol:     ErrProtocol,
	wire.CodeVersion:      ErrVersion,
	wire.CodeBadHello:     ErrBadHello,
	wire.CodeBadPattern:   ErrBadPattern,
	wire.CodeOrigin:       ErrOrigin,
	wire.CodeSlowConsumer: ErrSlowConsumer,
	wire.CodeShutdown:     ErrShutdown,
	wire.CodeChannelGone:  ErrChannelGone,
	wire.CodeForbidden:    ErrForbidden,
	wire.CodeBadRequest:   ErrBadRequest,
}

// ServerError is an error the server reported before closing the
// connection: a protocol problem, a slow-consumer disconnect, a shutdown.
// It matches the error of its code with errors.Is (ErrSlowConsumer,
// ErrShutdown, ...).
type ServerError struct {
	Code uint16 // the protocol's error code, see docs/PROTOCOL.md
	Text string // the server's explanation
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("netcluster: server closed the connection: %s (code %d)", e.Text, e.Code)
}

// Is reports whether target is the error of e's code. A code this
// version does not know matches nothing.
func (e *ServerError) Is(target error) bool {
	known, ok := codeErrors[e.Code]
	return ok && known == target
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
