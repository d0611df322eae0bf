package memconn

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
)

// waitReading returns once a Read on c blocks on its empty ring.
func waitReading(c *Conn) {
	for {
		c.rd.mu.Lock()
		w := c.rd.waiting != nil
		c.rd.mu.Unlock()
		if w {
			return
		}
		runtime.Gosched()
	}
}

// TestWriteHandsToWaitingReader checks that a Write copies straight into
// the buffer of a Read that waits, past the ring's limit, and that what
// does not fit follows through the ring in order. With a limit of one
// byte and no hand-off, the Read would return one byte.
func TestWriteHandsToWaitingReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ limit, read, write int }{
		{limit: 1, read: 100, write: 100}, // all of it past a one-byte ring
		{limit: 1 << 10, read: 10, write: 30},
	} {
		a, b := newPipe(t, WithBufferSize(tc.limit))
		msg := make([]byte, tc.write)
		for i := range msg {
			msg[i] = byte(i + 1)
		}
		got := make(chan []byte, 1)
		go func() {
			p := make([]byte, tc.read)
			n, err := b.Read(p)
			if err != nil {
				t.Errorf("read: %v", err)
			}
			got <- p[:n]
		}()
		waitReading(b.(*Conn))
		var wg sync.WaitGroup
		wg.Go(func() {
			if n, err := a.Write(msg); err != nil || n != len(msg) {
				t.Errorf("write = %d, %v; want %d, nil", n, err, len(msg))
			}
		})
		first := <-got
		if !bytes.Equal(first, msg[:tc.read]) {
			a.Close() // release a Write stuck on the full ring
			wg.Wait()
			t.Fatalf("limit %d: first read = %v, want %v", tc.limit, first, msg[:tc.read])
		}
		wg.Wait()
		rest := make([]byte, tc.write-tc.read)
		if len(rest) > 0 {
			if n, err := b.Read(rest); err != nil || !bytes.Equal(rest[:n], msg[tc.read:]) {
				t.Fatalf("limit %d: second read = %v, %v; want %v", tc.limit, rest[:n], err, msg[tc.read:])
			}
		}
	}
}
