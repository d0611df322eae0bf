package netcluster

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Option configures an Agent.
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
// the Dial method of an embedded server.Server to connect in memory.
func WithDialer(dial func(ctx context.Context, channel string) (net.Conn, error)) Option {
	return func(o *options) { o.dialer = dial }
}

// WithAgentID sets the agent's id: 1 to 64 letters, digits, '.', '_' or
// '-'. The default is random.
func WithAgentID(id string) Option { return func(o *options) { o.id = id } }

// WithLogger sets the agent's logger. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithStateHandler sets a function called at every change of connection
// state, with the error that caused it, if any. It is called from the
// agent's connection goroutine, one call at a time, and must not block.
func WithStateHandler(f func(State, error)) Option { return func(o *options) { o.onState = f } }

// WithErrorHandler sets a function called with asynchronous errors: a
// *DroppedError when the server dropped messages for this agent, a
// *ServerError when the server closed the connection. It runs on the
// handler goroutine, in stream order. The default logs them.
func WithErrorHandler(f func(error)) Option { return func(o *options) { o.onError = f } }

// WithReconnectWait sets the backoff between reconnection attempts: it
// starts at min and doubles up to max. The defaults are 10ms and 2s.
func WithReconnectWait(min, max time.Duration) Option {
	return func(o *options) { o.minWait, o.maxWait = min, max }
}

// WithoutReconnect makes the agent give up when its connection ends,
// instead of reconnecting: Emit and Flush then fail with ErrNotConnected,
// and only Close remains to be called.
func WithoutReconnect() Option { return func(o *options) { o.reconnect = false } }

// WithBufferSize bounds, in bytes, the messages emitted but not yet
// written to the server. When it is full, Emit waits while connected and
// fails with ErrBufferFull while disconnected. The default is 8 MiB. A
// single message larger than the bound is accepted when the buffer is
// empty.
func WithBufferSize(n int) Option { return func(o *options) { o.bufferSize = n } }

// WithQueueSize bounds the received messages waiting for handlers, in
// bytes: their data plus 64 per message. When it is full the agent stops
// reading from the server. The default is 16 MiB. A single message larger
// than the bound is accepted when the queue is empty. The agent's own
// messages, delivered in memory by Emit, never wait for room (a handler
// may emit to its own listeners), so an Emit loop much faster than its
// own handlers grows the queue past the bound.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }
