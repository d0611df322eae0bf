package memconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// aLongTimeAgo is a deadline in the past.
var aLongTimeAgo = time.Unix(1, 0)

func newPipe(t *testing.T, opts ...Option) (a, b net.Conn) {
	t.Helper()
	a, b = Pipe("test", opts...)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func mustRead(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// checkErr fails unless err wraps target; for os.ErrDeadlineExceeded it
// also checks that err is a net.Error whose Timeout is true.
func checkErr(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", op, err, target)
	}
	if target == os.ErrDeadlineExceeded {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: %v (%T) is not a net.Error with Timeout", op, err, err)
		}
	}
}

func TestAddr(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t)
	for _, addr := range []net.Addr{a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr()} {
		if addr.Network() != "memconn" || addr.String() != "test" {
			t.Errorf("address %s/%s, want memconn/test", addr.Network(), addr.String())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t)
	mustWrite(t, a, "hello")
	mustWrite(t, a, ", world")
	mustWrite(t, b, "pong")
	mustRead(t, b, "hello, world")
	mustRead(t, a, "pong")

	// Read returns what is there rather than waiting to fill p.
	mustWrite(t, a, "abc")
	buf := make([]byte, 100)
	if n, err := b.Read(buf); n != 3 || err != nil {
		t.Errorf("Read = %d, %v; want 3, nil", n, err)
	}
	if n, err := b.Read(buf[:0]); n != 0 || err != nil {
		t.Errorf("empty Read = %d, %v", n, err)
	}
	if n, err := a.Write(nil); n != 0 || err != nil {
		t.Errorf("empty Write = %d, %v", n, err)
	}
}

// TestBuffered checks what sets Pipe apart from net.Pipe: Writes return
// before anyone reads, until the bound.
func TestBuffered(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t, WithBufferSize(1000))
	data := bytes.Repeat([]byte("x"), 1000)
	if n, err := a.Write(data); n != 1000 || err != nil {
		t.Fatalf("Write into an empty buffer = %d, %v", n, err)
	}
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := a.Write([]byte("y"))
	checkErr(t, "Write into a full buffer", err, os.ErrDeadlineExceeded)
	if n != 0 {
		t.Errorf("Write into a full buffer wrote %d bytes", n)
	}
	a.SetWriteDeadline(time.Time{})
	mustRead(t, b, string(data))
	mustWrite(t, a, "y")
	mustRead(t, b, "y")
}

// TestWriteBlocksUntilRead checks that a Write into a full buffer waits for
// the reader, and that a Write larger than the bound gets through in parts.
func TestWriteBlocksUntilRead(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t, WithBufferSize(10))
	done := make(chan error)
	go func() {
		_, err := a.Write([]byte("0123456789abcdefghij")) // twice the bound
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Write of twice the bound returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	mustRead(t, b, "0123456789abcdefghij")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTransfer moves random data both ways at once in random chunk sizes,
// across buffer bounds that force the ring to wrap and grow.
func TestTransfer(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 7, 1000, minBuffer + 1, DefaultBufferSize} {
		t.Run(fmt.Sprint("buffer", size), func(t *testing.T) {
			t.Parallel()
			a, b := newPipe(t, WithBufferSize(size))
			total := 2 << 20
			if size < 100 {
				total = 64 << 10
			}
			var wg sync.WaitGroup
			for i, pair := range [][2]net.Conn{{a, b}, {b, a}} {
				want := make([]byte, total)
				r := rand.New(rand.NewPCG(uint64(size), uint64(i)))
				for j := range want {
					want[j] = byte(r.Uint32())
				}
				w, rd := pair[0], pair[1]
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(i), 1))
					for p := want; len(p) > 0; {
						k := min(len(p), 1+r.IntN(3*size+100))
						if n, err := w.Write(p[:k]); n != k || err != nil {
							t.Errorf("Write = %d, %v", n, err)
							return
						}
						p = p[k:]
					}
					if err := w.(*Conn).CloseWrite(); err != nil {
						t.Error(err)
					}
				})
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(i), 2))
					var got bytes.Buffer
					buf := make([]byte, 3*size+100)
					for {
						n, err := rd.Read(buf[:1+r.IntN(len(buf))])
						got.Write(buf[:n])
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Errorf("Read: %v", err)
							return
						}
					}
					if !bytes.Equal(got.Bytes(), want) {
						t.Errorf("received %d bytes that differ from the %d sent", got.Len(), len(want))
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestSteadyStateAllocs checks that Write and Read allocate nothing once the
// buffer has grown.
func TestSteadyStateAllocs(t *testing.T) {
	a, b := newPipe(t)
	msg := make([]byte, 128)
	buf := make([]byte, 128)
	a.Write(msg)
	b.Read(buf)
	allocs := testing.AllocsPerRun(1000, func() {
		a.Write(msg)
		b.Read(buf)
	})
	if allocs != 0 {
		t.Errorf("Write+Read allocate %v times, want 0", allocs)
	}
}
