package memconn

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferSize is the default bound on each end's receive buffer.
const DefaultBufferSize = 4 << 20

// Option configures a pipe created by [Pipe].
type Option func(*options)

type options struct {
	bufferSize int
}

// WithBufferSize bounds each end's receive buffer at n bytes: a Write blocks
// while the peer has n unread bytes. The default is [DefaultBufferSize];
// n <= 0 means the default. Buffers start small and grow as needed.
func WithBufferSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.bufferSize = n
		}
	}
}

// Addr is the address of both ends of a pipe: the name given to [Pipe].
type Addr string

// Network returns "memconn".
func (Addr) Network() string { return "memconn" }

// String returns the pipe's name.
func (a Addr) String() string { return string(a) }

// Conn is one end of a pipe made by [Pipe].
//
// All methods may be called concurrently, as for any net.Conn. Concurrent
// Writes do not interleave their bytes. Close is idempotent; it releases
// blocked Reads and Writes on both ends.
type Conn struct {
	rd   *stream // the peer writes here
	wr   *stream // the peer reads here
	addr Addr

	rdMu, wrMu    sync.Mutex // one Read and one Write at a time
	readDeadline  deadline
	writeDeadline deadline
	closed        atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

// Pipe creates a connected pair of Conns, named name in their LocalAddr and
// RemoteAddr (network "memconn"). Bytes written to a are read from b and
// the other way round.
func Pipe(name string, opts ...Option) (a, b net.Conn) {
	o := options{bufferSize: DefaultBufferSize}
	for _, opt := range opts {
		opt(&o)
	}
	ab, ba := newStream(o.bufferSize), newStream(o.bufferSize)
	return newConn(name, ba, ab), newConn(name, ab, ba)
}

func newConn(name string, rd, wr *stream) *Conn {
	return &Conn{
		rd:            rd,
		wr:            wr,
		addr:          Addr(name),
		readDeadline:  makeDeadline(),
		writeDeadline: makeDeadline(),
	}
}

// Read reads what the peer has written, up to len(p) bytes, blocking until
// there is something to read. After the peer closes its writing side, Read
// returns the remaining bytes, then io.EOF. Read fails with an error
// wrapping net.ErrClosed after Close and with one wrapping
// os.ErrDeadlineExceeded (a net.Error whose Timeout is true) once the read
// deadline has passed, even if bytes are waiting (not if a Write has
// already copied them into p while this Read waited: those are returned).
func (c *Conn) Read(p []byte) (int, error) {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	s := c.rd
	for {
		s.mu.Lock()
		if n := s.handed; n > 0 {
			// A Write filled p while this Read waited: those bytes
			// are delivered, whatever happened since (a deadline).
			s.handed = 0
			s.mu.Unlock()
			return n, nil
		}
		s.waiting = nil
		switch {
		case s.readerClosed:
			s.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case c.readDeadline.expired():
			s.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case len(p) == 0:
			s.mu.Unlock()
			return 0, nil
		case s.n > 0:
			n := s.get(p)
			s.mu.Unlock()
			wake(s.writable)
			return n, nil
		case s.writerClosed:
			s.mu.Unlock()
			return 0, io.EOF
		}
		s.waiting = p
		s.mu.Unlock()
		select {
		case <-s.readable:
		case <-c.readDeadline.wait():
		}
	}
}

// Write copies p into the peer's receive buffer and returns, blocking only
// while that buffer is full. It fails with an error wrapping net.ErrClosed
// after Close or CloseWrite, with one wrapping io.ErrClosedPipe once the
// peer has closed, and with one wrapping os.ErrDeadlineExceeded (a
// net.Error whose Timeout is true) once the write deadline has passed; n
// then says how many bytes went through.
func (c *Conn) Write(p []byte) (n int, err error) {
	c.wrMu.Lock()
	defer c.wrMu.Unlock()
	s := c.wr
	for {
		s.mu.Lock()
		switch {
		case s.writerClosed:
			s.mu.Unlock()
			return n, c.opError("write", net.ErrClosed)
		case s.readerClosed:
			s.mu.Unlock()
			return n, c.opError("write", io.ErrClosedPipe)
		case c.writeDeadline.expired():
			s.mu.Unlock()
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		n += s.hand(p[n:])
		if n < len(p) && s.n < s.limit {
			n += s.put(p[n:])
		}
		s.mu.Unlock()
		wake(s.readable)
		if n == len(p) {
			return n, nil
		}
		select {
		case <-s.writable:
		case <-c.writeDeadline.wait():
		}
	}
}

// Close closes both directions. Blocked and later Reads and Writes on c fail
// with an error wrapping net.ErrClosed; the peer reads what c wrote, then
// io.EOF, and its Writes fail with an error wrapping io.ErrClosedPipe.
// Bytes that c had not read are dropped. Close always returns nil; calls
// after the first do nothing.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.rd.closeReader()
	c.wr.closeWriter()
	c.readDeadline.stop()
	c.writeDeadline.stop()
	return nil
}

// CloseWrite closes the writing direction only: the peer reads what c
// wrote, then io.EOF, while c can still read what the peer writes. Later
// Writes on c fail with an error wrapping net.ErrClosed.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	c.wr.closeWriter()
	return nil
}

// LocalAddr returns the pipe's name as an [Addr].
func (c *Conn) LocalAddr() net.Addr { return c.addr }

// RemoteAddr returns the pipe's name as an [Addr].
func (c *Conn) RemoteAddr() net.Addr { return c.addr }

// SetDeadline sets the read and write deadlines, as documented on net.Conn:
// pending and future Reads and Writes fail once it passes, until it is
// moved; the zero time means none. It fails after Close.
func (c *Conn) SetDeadline(t time.Time) error {
	if !c.readDeadline.set(t) || !c.writeDeadline.set(t) {
		return c.opError("set", net.ErrClosed)
	}
	return nil
}

// SetReadDeadline sets the read deadline; see SetDeadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.readDeadline.set(t) {
		return c.opError("set", net.ErrClosed)
	}
	return nil
}

// SetWriteDeadline sets the write deadline; see SetDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.writeDeadline.set(t) {
		return c.opError("set", net.ErrClosed)
	}
	return nil
}

// opError wraps err as the net package does, so callers can use
// errors.Is(err, net.ErrClosed) and net.Error's Timeout.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "memconn", Source: c.addr, Addr: c.addr, Err: err}
}
