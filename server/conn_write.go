package server

// Writing: the outbox to the socket, and closing the connection.

import (
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// lingerTimeout is how long a closing connection's writer gets to write
// what is queued, a last error frame say.
const lingerTimeout = time.Second

const (
	idleKeptBuf = 16 << 10        // a writer idle for idleRelease keeps no larger buffer
	idleRelease = 1 * time.Second // see idleKeptBuf
)

// writeLoop writes queued frames, many per system call, until the
// connection closes or, when closing, until the outbox is empty.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var spare []byte
	idle := time.NewTimer(idleRelease)
	defer idle.Stop()
	for {
		for {
			c.omu.Lock()
			if len(c.obuf) == 0 && c.pending > 0 && !c.legacy {
				// The agent caught up: tell it what it missed.
				c.obuf = wire.AppendU64(c.obuf, wire.TypeDropped, c.pending)
				c.pending = 0
			}
			batch := c.obuf
			closing := c.closing
			if len(batch) == 0 {
				c.omu.Unlock()
				if closing {
					c.close()
					return
				}
				break
			}
			c.obuf = spare[:0]
			c.obig = 0
			c.stalled, c.stalls = false, 0
			if c.room != nil {
				close(c.room)
				c.room = nil
			}
			c.omu.Unlock()
			if _, err := c.nc.Write(batch); err != nil {
				c.close()
				return
			}
			spare = batch
		}
		idle.Reset(idleRelease)
		select {
		case <-c.wake:
		case <-idle.C:
			// Idle: give back large buffers; they are kept while
			// messages flow.
			spare = nil
			c.omu.Lock()
			if len(c.obuf) == 0 && cap(c.obuf) > idleKeptBuf {
				c.obuf = nil
			}
			c.omu.Unlock()
			select {
			case <-c.wake:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

// linger lets the writer send what is queued (an error frame, say) for a
// short while after the reader ended, then closes the connection.
func (c *conn) linger() {
	c.omu.Lock()
	c.closing = true
	c.omu.Unlock()
	c.signal()
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	select {
	case <-c.writerDone:
	case <-t.C:
	}
	c.close()
	<-c.writerDone
}

// waitFlushed waits until the writer has written everything and stopped,
// or until done is closed.
func (c *conn) waitFlushed(done <-chan struct{}) {
	select {
	case <-c.writerDone:
	case <-c.done:
	case <-done:
	}
}

// close closes the connection at once. Safe to call more than once.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}
