//go:build linux

package server

import (
	"bytes"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// unixPair returns the two ends of a connected Unix stream socket pair.
func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = nc.(*net.UnixConn)
		t.Cleanup(func() { nc.Close() })
	}
	return ends[0], ends[1]
}

// A message for an agent whose writer is idle and outbox empty is written
// to its socket by the sender's reader itself when the sender has sent
// nothing after it, and counted as a batch taken and written
// (acknowledgements wait on that): here no writer runs at all.
func TestWriteInPlace(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	server, agent := unixPair(t)
	r := newConn(ch, server)
	for i := range 3 {
		r.deliver(&delivery{raw: frame, v: &v, inPlace: inPlaceMax})
		got := make([]byte, len(frame))
		agent.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(agent, got); err != nil {
			t.Fatalf("message %d not written in place: %v", i, err)
		}
		if !bytes.Equal(got, frame) {
			t.Fatalf("message %d: read %q, want the frame", i, got[:16])
		}
		r.omu.Lock()
		takes, queued, wrote := r.takes, len(r.obuf), r.wrote
		r.omu.Unlock()
		if want := uint64(i + 1); takes != want || r.batches.Load() != want || queued != 0 || wrote != want*uint64(len(frame)) {
			t.Fatalf("after message %d: takes %d, batches %d, queued %d, wrote %d; want %d, %d, 0, %d",
				i, takes, r.batches.Load(), queued, wrote, want, want, want*uint64(len(frame)))
		}
	}
	if r.wc.Load() != nil {
		t.Error("writer woken (its channels made) for a message written in place")
	}
}

// A message is queued for the writer while the sender has more to route
// (its writer batches them), and when it would pass the writer: while the
// writer is in a write, and when the socket has no room (nothing of the
// frame is written, none is half written).
func TestWriteInPlaceKeepsOrder(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	server, agent := unixPair(t)
	r := newConn(ch, server)
	r.deliver(&delivery{raw: frame, v: &v})
	r.omu.Lock()
	queued := len(r.obuf)
	r.obuf = r.obuf[:0]
	r.omu.Unlock()
	if queued != len(frame) || len(r.writer().wake) != 1 {
		t.Fatalf("sender with more to route: %d bytes queued, writer woken %d; want %d, 1", queued, len(r.writer().wake), len(frame))
	}
	<-r.writer().wake
	r.omu.Lock()
	r.writing = true
	r.omu.Unlock()
	r.deliver(&delivery{raw: frame, v: &v, inPlace: inPlaceMax})
	r.omu.Lock()
	queued, passed := len(r.obuf), r.wrote
	r.writing = false
	r.obuf = r.obuf[:0]
	r.omu.Unlock()
	if queued != len(frame) || passed != 0 {
		t.Fatalf("writer in a write: %d bytes queued and %d written in place, want the frame's %d and 0", queued, passed, len(frame))
	}
	<-r.writer().wake
	// Fill the socket: nobody reads the agent's end.
	var filled int
	for {
		r.omu.Lock()
		r.obuf = append(r.obuf[:0], frame...)
		n := r.flushNowLocked()
		r.omu.Unlock()
		if n == 0 {
			break
		}
		if filled += n; filled > 64<<20 {
			t.Fatal("the socket never filled")
		}
	}
	r.omu.Lock()
	r.obuf = r.obuf[:0]
	wrote, closing := r.wrote, r.closing
	r.omu.Unlock()
	if closing || wrote != uint64(filled) {
		t.Fatalf("filling the socket: connection closing %v, %d bytes counted written of %d; want open, all", closing, wrote, filled)
	}
	r.deliver(&delivery{raw: frame, v: &v, inPlace: inPlaceMax})
	r.omu.Lock()
	queued, after := len(r.obuf), r.wrote
	r.omu.Unlock()
	if queued != len(frame) || after != wrote {
		t.Fatalf("socket full: %d bytes queued and %d more written, want %d and 0", queued, after-wrote, len(frame))
	}
	if len(r.writer().wake) != 1 {
		t.Error("writer not woken for a queued message")
	}
	// What the agent reads is whole frames, nothing half written (the
	// frame queued for the writer comes after them).
	got := make([]byte, filled)
	agent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(agent, got); err != nil {
		t.Fatalf("reading the %d bytes written in place: %v", filled, err)
	}
	for off := 0; off < len(got); off += len(frame) {
		if end := off + len(frame); end > len(got) || !bytes.Equal(got[off:end], frame) {
			t.Fatalf("bytes %d on of %d written in place are not the frame: a frame was half written", off, len(got))
		}
	}
	agent.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, _ := agent.Read(got[:1]); n != 0 {
		t.Fatal("more written than counted")
	}
}
