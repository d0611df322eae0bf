package memconn

import (
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestClose(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t)
	mustWrite(t, a, "last words")
	mustWrite(t, b, "unread")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	_, err := a.Read(make([]byte, 10))
	checkErr(t, "Read after Close", err, net.ErrClosed)
	_, err = a.Write([]byte("x"))
	checkErr(t, "Write after Close", err, net.ErrClosed)
	checkErr(t, "SetDeadline after Close", a.SetDeadline(time.Now()), net.ErrClosed)
	checkErr(t, "SetReadDeadline after Close", a.SetReadDeadline(time.Now()), net.ErrClosed)
	checkErr(t, "SetWriteDeadline after Close", a.SetWriteDeadline(time.Now()), net.ErrClosed)
	checkErr(t, "CloseWrite after Close", a.(*Conn).CloseWrite(), net.ErrClosed)

	mustRead(t, b, "last words") // the peer drains, then gets EOF
	for range 2 {
		if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("peer Read after draining = %d, %v; want 0, EOF", n, err)
		}
	}
	_, err = b.Write([]byte("x"))
	checkErr(t, "peer Write after Close", err, io.ErrClosedPipe)
	if err := b.Close(); err != nil {
		t.Errorf("peer Close = %v", err)
	}
	_, err = b.Read(make([]byte, 10))
	checkErr(t, "peer Read after its Close", err, net.ErrClosed)
}

func TestCloseWrite(t *testing.T) {
	t.Parallel()
	a, b := newPipe(t)
	mustWrite(t, a, "request")
	if err := a.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := a.(*Conn).CloseWrite(); err != nil {
		t.Errorf("second CloseWrite = %v", err)
	}
	_, err := a.Write([]byte("x"))
	checkErr(t, "Write after CloseWrite", err, net.ErrClosed)
	mustRead(t, b, "request")
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer Read = %v, want EOF", err)
	}
	mustWrite(t, b, "response") // the other direction still works
	mustRead(t, a, "response")
}

// TestCloseReleasesBlocked checks that Close, on either end, releases a
// blocked Read or Write with the right error.
func TestCloseReleasesBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		write   bool // block in Write rather than Read
		closeMe bool // close the blocked end rather than its peer
		want    error
	}{
		{"Read/local", false, true, net.ErrClosed},
		{"Read/peer", false, false, io.EOF},
		{"Write/local", true, true, net.ErrClosed},
		{"Write/peer", true, false, io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := newPipe(t, WithBufferSize(4))
			errc := make(chan error, 1)
			go func() {
				var err error
				if tt.write {
					_, err = a.Write([]byte("more than four bytes"))
				} else {
					_, err = a.Read(make([]byte, 10))
				}
				errc <- err
			}()
			select {
			case err := <-errc:
				t.Fatalf("did not block: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if tt.closeMe {
				a.Close()
			} else {
				b.Close()
			}
			select {
			case err := <-errc:
				checkErr(t, tt.name, err, tt.want)
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not release the blocked call")
			}
		})
	}
}

func TestDeadlines(t *testing.T) {
	t.Parallel()
	t.Run("past", func(t *testing.T) {
		t.Parallel()
		a, b := newPipe(t)
		mustWrite(t, b, "waiting")
		a.SetDeadline(aLongTimeAgo)
		n, err := a.Read(make([]byte, 10)) // fails even with bytes waiting
		checkErr(t, "Read", err, os.ErrDeadlineExceeded)
		if n != 0 {
			t.Errorf("Read n = %d", n)
		}
		n, err = a.Write([]byte("x"))
		checkErr(t, "Write", err, os.ErrDeadlineExceeded)
		if n != 0 {
			t.Errorf("Write n = %d", n)
		}
		a.SetDeadline(time.Time{}) // clearing restores the Conn
		mustRead(t, a, "waiting")
		mustWrite(t, a, "ok")
		mustRead(t, b, "ok")
	})
	t.Run("future", func(t *testing.T) {
		t.Parallel()
		a, _ := newPipe(t, WithBufferSize(1))
		start := time.Now()
		a.SetDeadline(start.Add(50 * time.Millisecond))
		errc := make(chan error, 1)
		go func() { _, err := a.Read(make([]byte, 1)); errc <- err }()
		n, err := a.Write([]byte("xyz"))
		checkErr(t, "Write", err, os.ErrDeadlineExceeded)
		if n != 1 {
			t.Errorf("Write reported %d bytes, want the 1 that fit", n)
		}
		checkErr(t, "Read", <-errc, os.ErrDeadlineExceeded)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("timed out after %v, before the deadline", d)
		}
	})
	t.Run("set while blocked", func(t *testing.T) {
		t.Parallel()
		a, _ := newPipe(t, WithBufferSize(1))
		mustWrite(t, a, "x")
		errc := make(chan error, 2)
		go func() { _, err := a.Read(make([]byte, 1)); errc <- err }()
		go func() { _, err := a.Write([]byte("y")); errc <- err }()
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-errc:
			t.Fatalf("returned before the deadline was set: %v", err)
		default:
		}
		a.SetReadDeadline(aLongTimeAgo)
		a.SetWriteDeadline(aLongTimeAgo)
		for range 2 {
			checkErr(t, "blocked call", <-errc, os.ErrDeadlineExceeded)
		}
	})
	t.Run("extended while blocked", func(t *testing.T) {
		t.Parallel()
		a, b := newPipe(t)
		a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		a.SetReadDeadline(time.Now().Add(time.Hour))
		errc := make(chan error, 1)
		go func() { _, err := a.Read(make([]byte, 1)); errc <- err }()
		time.Sleep(60 * time.Millisecond)
		mustWrite(t, b, "x")
		if err := <-errc; err != nil {
			t.Errorf("Read after the first deadline was extended: %v", err)
		}
	})
	t.Run("read deadline spares writes", func(t *testing.T) {
		t.Parallel()
		a, b := newPipe(t)
		a.SetReadDeadline(aLongTimeAgo)
		_, err := a.Read(make([]byte, 1))
		checkErr(t, "Read", err, os.ErrDeadlineExceeded)
		mustWrite(t, a, "x")
		mustRead(t, b, "x")
	})
	t.Run("write deadline spares reads", func(t *testing.T) {
		t.Parallel()
		a, b := newPipe(t)
		a.SetWriteDeadline(aLongTimeAgo)
		_, err := a.Write([]byte("x"))
		checkErr(t, "Write", err, os.ErrDeadlineExceeded)
		mustWrite(t, b, "y")
		mustRead(t, a, "y")
	})
}
