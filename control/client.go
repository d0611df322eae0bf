package control

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

const (
	handshakeTimeout = 10 * time.Second
	readBufSize      = 64 << 10
	redialMin        = 20 * time.Millisecond  // first wait between dials while reconnecting
	redialMax        = 500 * time.Millisecond // the longest
)

// Errors returned by a Client.
var (
	// ErrClosed is returned by the calls of a closed Client.
	ErrClosed = errors.New("control: client closed")
	// ErrNotConnected is returned when the connection to the server was
	// lost and the Client does not reconnect (Options.Reconnect), or lost
	// while a call waited for its reply.
	ErrNotConnected = errors.New("control: not connected")
)

// ServerError is an error the server reported before closing the control
// connection: a shutdown, a refused hello. Errors answering one request
// are not ServerErrors: they are returned by that call, and the connection
// stays open.
type ServerError struct {
	Code uint16 // the wire error code, see docs/PROTOCOL.md
	Text string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("control: server closed the connection: %s (code %d)", e.Text, e.Code)
}

// Options configure a Client. A nil *Options is the zero value, and the
// zero value is valid.
type Options struct {
	// AgentID is the client's agent id on the control channel, shown by
	// showchannel control. Default "control-" and random hex.
	AgentID string

	// Dial opens a connection to the socket at path. Nil means a Unix
	// socket (a named pipe on Windows).
	Dial func(ctx context.Context, path string) (net.Conn, error)

	// Reconnect makes a call that finds the connection lost dial again,
	// waiting between attempts (20 ms at first, up to 500 ms) until its
	// ctx ends. Without it such a call fails with ErrNotConnected.
	Reconnect bool

	// OnState, if set, is called with false and the cause when the
	// connection is lost, and with true when a call has connected again.
	// It is called from the Client's goroutines and must not block.
	OnState func(connected bool, err error)
}

// Client makes control requests on one connection to a server's control
// channel. Its methods may be called concurrently. Close releases it.
type Client struct {
	path string
	o    Options

	mu      sync.Mutex
	closed  bool
	sess    *session // nil while disconnected
	nextID  uint64
	readers sync.WaitGroup
}

// session is one connection and the calls waiting for its replies.
type session struct {
	nc      net.Conn
	rd      *wire.Reader
	wmu     chan struct{}          // holds a token while a write is under way
	pending map[uint64]chan []byte // under Client.mu
	done    chan struct{}          // closed when the connection ended
	err     error                  // why, set before done closes
}

// Dial connects a Client to the control socket at path. It fails, naming
// path, if no server answers; the server refusing the connection is a
// *ServerError. ctx bounds the connection only.
func Dial(ctx context.Context, path string, o *Options) (*Client, error) {
	c := &Client{path: path}
	if o != nil {
		c.o = *o
	}
	if c.o.AgentID == "" {
		var b [4]byte
		rand.Read(b[:])
		c.o.AgentID = "control-" + hex.EncodeToString(b[:])
	}
	if c.o.Dial == nil {
		c.o.Dial = dialSocket
	}
	s, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.start(s)
	c.mu.Unlock()
	return c, nil
}

// Path returns the socket path the Client connects to.
func (c *Client) Path() string { return c.path }

// connect dials and performs the handshake: preamble and Hello out,
// Welcome (or an Error) back.
func (c *Client) connect(ctx context.Context) (s *session, err error) {
	nc, err := c.o.Dial(ctx, c.path)
	if err != nil {
		return nil, fmt.Errorf("control: connect to %s: %w", c.path, err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	defer func() {
		if err != nil {
			nc.Close()
			if ctxDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
				// The socket's deadline was ctx's: ctx ends at once, if
				// its timer has not fired yet. Its error names the cause.
				<-ctx.Done()
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			err = fmt.Errorf("control: connect to %s: %w", c.path, err)
		}
	}()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	hello := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{
		Version: wire.Version, PID: uint32(os.Getpid()), AgentID: c.o.AgentID, Channel: Channel,
	})...)
	if _, err := nc.Write(hello); err != nil {
		return nil, err
	}
	rd := wire.NewReader(bufio.NewReaderSize(nc, readBufSize), wire.DefaultMaxFrame)
	f, err := rd.Next()
	if err != nil {
		return nil, err
	}
	var w wire.Welcome
	switch f.Type {
	case wire.TypeWelcome:
		if w, err = wire.ParseWelcome(f.Payload); err != nil {
			return nil, err
		}
	case wire.TypeError:
		e, _ := wire.ParseError(f.Payload)
		return nil, &ServerError{Code: e.Code, Text: e.Text}
	default:
		return nil, fmt.Errorf("expected welcome, got %s", wire.TypeName(f.Type))
	}
	if !stop() {
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	rd.SetMax(max(int(w.MaxFrame), wire.DefaultMaxFrame))
	return &session{nc: nc, rd: rd, wmu: make(chan struct{}, 1), pending: make(map[uint64]chan []byte), done: make(chan struct{})}, nil
}

// start makes s the connection and starts its reader. Call with mu held.
func (c *Client) start(s *session) {
	c.sess = s
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		c.read(s)
	}()
}

// read delivers the replies of s until its connection ends, then fails
// the calls still waiting and reports the loss.
func (c *Client) read(s *session) {
	err := s.readLoop(c)
	s.nc.Close()
	c.mu.Lock()
	s.err = err
	close(s.done)
	clear(s.pending)
	lost := c.sess == s && !c.closed
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
	if lost && c.o.OnState != nil {
		c.o.OnState(false, err)
	}
}

// readLoop reads frames until an error: replies go to their calls;
// messages that reach the control channel are not for this client.
func (s *session) readLoop(c *Client) error {
	for {
		f, err := s.rd.Next()
		if err != nil {
			return err
		}
		switch f.Type {
		case wire.TypeReply:
			r, err := wire.ParseRequest(f.Payload)
			if err != nil {
				return fmt.Errorf("control: from server: %w", err)
			}
			c.mu.Lock()
			if ch := s.pending[r.ID]; ch != nil {
				ch <- append([]byte(nil), r.Body...)
				delete(s.pending, r.ID)
			}
			c.mu.Unlock()
		case wire.TypePing:
			tok, err := wire.ParseU64(f.Payload)
			if err != nil {
				return fmt.Errorf("control: from server: %w", err)
			}
			if err := s.write(context.Background(), wire.AppendU64(nil, wire.TypePong, tok)); err != nil {
				return err
			}
		case wire.TypeError:
			e, err := wire.ParseError(f.Payload)
			if err != nil {
				return fmt.Errorf("control: from server: %w", err)
			}
			return &ServerError{Code: e.Code, Text: e.Text}
		case wire.TypeMsg, wire.TypeDropped, wire.TypePong:
		default:
			return fmt.Errorf("control: unexpected %s frame from the server", wire.TypeName(f.Type))
		}
	}
}

// write writes frame whole, one writer at a time, unless ctx ends first.
// A write that fails or is cut short by ctx may leave part of a frame on
// the connection: write then closes it, and the reader ends and reports
// why. Waiting for another writer ends with ctx and leaves the connection
// as it was.
func (s *session) write(ctx context.Context, frame []byte) error {
	select {
	case s.wmu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wmu }()
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		s.nc.SetWriteDeadline(time.Now())
		close(cut)
	})
	_, err := s.nc.Write(frame)
	if !stop() {
		<-cut
		if err == nil {
			s.nc.SetWriteDeadline(time.Time{}) // ctx ended just after the write
		} else {
			err = ctx.Err()
		}
	}
	if err != nil {
		s.nc.Close()
	}
	return err
}

// session returns the connection, dialing again if it was lost and the
// Client reconnects.
func (c *Client) session(ctx context.Context) (*session, error) {
	wait := redialMin
	for {
		c.mu.Lock()
		closed, s := c.closed, c.sess
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case s != nil:
			return s, nil
		case !c.o.Reconnect:
			return nil, fmt.Errorf("%w: the connection to %s ended", ErrNotConnected, c.path)
		}
		s, err := c.connect(ctx)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				s.nc.Close()
				return nil, ErrClosed
			}
			if c.sess != nil { // another call reconnected first
				c.mu.Unlock()
				s.nc.Close()
				continue
			}
			c.start(s)
			c.mu.Unlock()
			if c.o.OnState != nil {
				c.o.OnState(true, nil)
			}
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: reconnecting to %s: %w", ErrNotConnected, c.path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: reconnecting to %s: %w", ErrNotConnected, c.path, ctx.Err())
		}
		wait = min(2*wait, redialMax)
	}
}

// Connected reports whether the Client has a connection now. A lost
// connection is noticed at once; with Options.Reconnect the next call
// dials again.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// Do sends req and returns the result of a successful reply. An error
// reply is returned as an error with the server's text; the connection
// stays open. ctx bounds the call, reconnecting included.
func (c *Client) Do(ctx context.Context, req Request) (json.RawMessage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	b, err := c.RoundTrip(ctx, body)
	if err != nil {
		return nil, err
	}
	var rep Reply
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("control: unreadable reply from the server: %v", err)
	}
	if !rep.OK {
		return nil, errors.New(rep.Error)
	}
	return rep.Result, nil
}

// RoundTrip sends body, a JSON request, as it is and returns the reply's
// JSON body as it is: for tools that forward requests, and for testing
// the server with malformed ones. ctx bounds the call, reconnecting
// included.
func (c *Client) RoundTrip(ctx context.Context, body []byte) ([]byte, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	done := make(chan []byte, 1)
	s.pending[id] = done
	c.mu.Unlock()
	if err := s.write(ctx, wire.AppendRequest(nil, wire.TypeRequest, wire.Request{ID: id, Body: body})); err != nil && ctx.Err() != nil {
		c.mu.Lock()
		delete(s.pending, id)
		c.mu.Unlock()
		return nil, err
	} // other write errors end the connection: s.done says why
	select {
	case b := <-done:
		return b, nil
	case <-s.done:
		select {
		case b := <-done: // the reply came just before the end
			return b, nil
		default:
		}
		return nil, fmt.Errorf("%w: %w", ErrNotConnected, s.err)
	case <-ctx.Done():
		c.mu.Lock()
		delete(s.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Close closes the connection and waits for the Client's goroutine.
// Calls in progress fail. Additional calls return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.nc.Close()
	}
	c.readers.Wait()
	return nil
}
