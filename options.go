package netcluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Option configures an Agent. An option given a value that cannot work
// makes Connect fail with ErrInvalidOption, naming the option.
type Option func(*options)

type options struct {
	socketDir  string
	socketPath string
	dialer     func(ctx context.Context, channel string) (net.Conn, error)
	id         string
	logger     *slog.Logger
	onState    func(State, error)
	onError    func(error)
	minWait    time.Duration
	maxWait    time.Duration
	reconnect  bool
	bufferSize int
	queueSize  int
	borrow     bool // WithBorrowedMessages (borrow.go)

	errs []error // the invalid options, for Connect
}

// invalid records that an option's value cannot work.
func (o *options) invalid(format string, args ...any) {
	o.errs = append(o.errs, optionError("invalid option "+fmt.Sprintf(format, args...)))
}

// optionError says which option is invalid and why; it is an
// ErrInvalidOption.
type optionError string

func (e optionError) Error() string        { return string(e) }
func (e optionError) Is(target error) bool { return target == ErrInvalidOption }

// maxAgentID is the longest agent id, in bytes.
const maxAgentID = 64

// validAgentID reports whether id is 1 to 64 letters, digits, '.', '_' or
// '-': the ids the server accepts.
func validAgentID(id string) bool {
	if len(id) == 0 || len(id) > maxAgentID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func defaultOptions() options {
	return options{
		minWait:    10 * time.Millisecond,
		maxWait:    2 * time.Second,
		reconnect:  true,
		bufferSize: 8 << 20,
		queueSize:  16 << 20,
	}
}

// WithSocketDir sets the directory of the channel sockets. The default is
// the environment variable NETCLUSTER_SOCKETDIR, else /var/run for root,
// else $XDG_RUNTIME_DIR, else the private directory <temp
// dir>/netcluster-<uid>: the same rule as ncserver's (see
// config.Config.ResolveSocketDir). Connect refuses that private directory
// if another user owns it or its mode lets others in, and, in a directory
// that group or others may write to, a server that runs as neither this
// user, root, nor the directory's owner.
func WithSocketDir(dir string) Option { return func(o *options) { o.socketDir = dir } }

// WithSocketPath sets the full path of the channel's socket, overriding
// WithSocketDir.
func WithSocketPath(path string) Option { return func(o *options) { o.socketPath = path } }

// WithDialer makes the agent connect with dial instead of a socket. Pass
// the Dial method of an embedded server.Server to connect in memory. A
// nil dial is invalid.
func WithDialer(dial func(ctx context.Context, channel string) (net.Conn, error)) Option {
	return func(o *options) {
		if dial == nil {
			o.invalid("WithDialer: nil dial function")
		}
		o.dialer = dial
	}
}

// WithAgentID sets the agent's id: 1 to 64 letters, digits, '.', '_' or
// '-'; any other id is invalid. The default is random.
func WithAgentID(id string) Option {
	return func(o *options) {
		if !validAgentID(id) {
			o.invalid("WithAgentID(%q): want 1 to %d letters, digits, '.', '_' or '-'", id, maxAgentID)
		}
		o.id = id
	}
}

// WithLogger sets the agent's logger. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithStateHandler sets a function called at every change of connection
// state, with the error that caused it, if any. It is called from the
// agent's connection goroutine, one call at a time, and must not block.
func WithStateHandler(f func(State, error)) Option { return func(o *options) { o.onState = f } }

// WithErrorHandler sets a function called with asynchronous errors: a
// *DroppedError when the server dropped messages for this agent, a
// *GapError when a sender it received from may have lost messages (it
// ended, most often with the server, without everything it emitted
// reaching this agent), a
// *ServerError when the server closed the connection. It runs on the
// handler goroutine, in stream order. The default logs them.
func WithErrorHandler(f func(error)) Option { return func(o *options) { o.onError = f } }

// WithReconnectWait sets the backoff between reconnection attempts: it
// starts at min and doubles up to max. The defaults are 10ms and 2s. min
// must be positive and max at least min.
func WithReconnectWait(min, max time.Duration) Option {
	return func(o *options) {
		switch {
		case min <= 0:
			o.invalid("WithReconnectWait(%v, %v): the minimum must be positive", min, max)
		case max < min:
			o.invalid("WithReconnectWait(%v, %v): the minimum is above the maximum", min, max)
		}
		o.minWait, o.maxWait = min, max
	}
}

// WithoutReconnect makes the agent give up when its connection ends,
// instead of reconnecting: Emit and Flush then fail with ErrNotConnected,
// and only Close remains to be called.
func WithoutReconnect() Option { return func(o *options) { o.reconnect = false } }

// WithBufferSize bounds, in bytes, the messages emitted but not yet
// written to the server. When it is full, Emit waits while connected and
// fails with ErrBufferFull while disconnected. The default is 8 MiB. A
// single message larger than the bound is accepted when the buffer is
// empty, so 0 sends one message at a time. A negative n is invalid.
func WithBufferSize(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.invalid("WithBufferSize(%d): the size is negative", n)
		}
		o.bufferSize = n
	}
}

// WithQueueSize bounds the received messages waiting for handlers, in
// bytes: their data plus 64 per message. When it is full the agent stops
// reading from the server. The default is 16 MiB. A single message larger
// than the bound is accepted when the queue is empty. The agent's own
// messages, delivered in memory by Emit, never wait for room (a handler
// may emit to its own listeners), so an Emit loop much faster than its
// own handlers grows the queue past the bound. A negative n is invalid.
func WithQueueSize(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.invalid("WithQueueSize(%d): the size is negative", n)
		}
		o.queueSize = n
	}
}
