package memconn

import "sync"

// minBuffer is the size of a stream's first buffer.
const minBuffer = 4 << 10

// stream carries the bytes of one direction of a pipe: written by one Conn,
// read by the other. Its buffer is a ring that grows, up to limit, as the
// writer gets ahead of the reader, and is reused from then on.
type stream struct {
	limit int // immutable

	mu           sync.Mutex
	buf          []byte // ring; unread bytes are buf[start:start+n], wrapping
	start, n     int
	writerClosed bool // no more bytes will come: Read drains, then io.EOF
	readerClosed bool // no one will read: Write fails, buffered bytes are dropped

	// A Read blocked on an empty ring leaves its p in waiting; the next
	// Write copies straight into it and records how much in handed, which
	// that Read returns. In process the reader is usually waiting, and
	// this saves the second copy (into the ring and out again) and keeps
	// the bytes in the reader's buffer, warm in cache, rather than in a
	// ring that grows to megabytes.
	waiting []byte
	handed  int

	// Wake-ups, each with one waiter at a time (Conn.rdMu and Conn.wrMu
	// see to that) and capacity one, so no wake-up is lost; a waiter
	// rechecks the state when woken.
	readable chan struct{} // the reader may proceed
	writable chan struct{} // the writer may proceed
}

func newStream(limit int) *stream {
	return &stream{
		limit:    limit,
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
	}
}

// put copies as much of p as the limit allows into the buffer and returns
// how much it copied. s.mu must be held.
func (s *stream) put(p []byte) int {
	k := min(len(p), s.limit-s.n)
	if s.n+k > len(s.buf) {
		s.grow(s.n + k)
	}
	end := s.start + s.n
	if end >= len(s.buf) {
		end -= len(s.buf)
	}
	if c := copy(s.buf[end:], p[:k]); c < k {
		copy(s.buf, p[c:k])
	}
	s.n += k
	return k
}

// hand copies the start of p into a waiting reader's buffer, if a Read
// waits on an empty ring, and returns how much it copied. s.mu must be held.
func (s *stream) hand(p []byte) int {
	if s.waiting == nil || s.n > 0 || len(p) == 0 {
		return 0
	}
	k := copy(s.waiting, p)
	s.waiting, s.handed = nil, k
	return k
}

// get moves up to len(p) buffered bytes into p and returns how many.
// s.mu must be held.
func (s *stream) get(p []byte) int {
	k := min(len(p), s.n)
	if c := copy(p[:k], s.buf[s.start:]); c < k {
		copy(p[c:k], s.buf)
	}
	s.n -= k
	s.start += k
	switch {
	case s.n == 0:
		s.start = 0 // the next put and get need not wrap
	case s.start >= len(s.buf):
		s.start -= len(s.buf)
	}
	return k
}

// grow replaces the buffer by one that holds at least need bytes, at most
// s.limit. s.mu must be held.
func (s *stream) grow(need int) {
	buf := make([]byte, min(max(need, 2*len(s.buf), minBuffer), s.limit))
	if c := copy(buf[:s.n], s.buf[s.start:]); c < s.n {
		copy(buf[c:s.n], s.buf)
	}
	s.buf, s.start = buf, 0
}

// closeReader records that the reader is gone. Its Conn's deadlines and
// rdMu are its own business; this wakes both ends.
func (s *stream) closeReader() {
	s.mu.Lock()
	s.readerClosed = true
	s.buf, s.start, s.n = nil, 0, 0
	s.waiting, s.handed = nil, 0
	s.mu.Unlock()
	wake(s.readable)
	wake(s.writable)
}

// closeWriter records that no more bytes will be written, and wakes both
// ends.
func (s *stream) closeWriter() {
	s.mu.Lock()
	s.writerClosed = true
	s.mu.Unlock()
	wake(s.readable)
	wake(s.writable)
}

// wake signals ch's waiter, if it has none pending.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
