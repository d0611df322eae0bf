package control_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/wire"
)

// A server that answers the hello and then reads nothing more cannot hold
// a call past its ctx: net.Pipe has no buffer, so the request's write
// blocks until the ctx cuts it.
func TestRoundTripWriteEndsWithCtx(t *testing.T) {
	t.Parallel()
	cli, srv := net.Pipe()
	defer srv.Close()
	served := make(chan error, 1)
	go func() {
		br := bufio.NewReader(srv)
		if _, err := io.ReadFull(br, make([]byte, len(wire.Preamble))); err != nil {
			served <- err
			return
		}
		if _, err := wire.NewReader(br, wire.DefaultMaxFrame).Next(); err != nil {
			served <- err
			return
		}
		_, err := srv.Write(wire.AppendWelcome(nil, wire.Welcome{Version: wire.Version, MaxFrame: wire.DefaultMaxFrame, ServerID: "stuck"}))
		served <- err // and read nothing more
	}()
	c, err := control.Dial(testCtx(t), "stuck", &control.Options{
		Dial: func(context.Context, string) (net.Conn, error) { return cli, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.RoundTrip(ctx, []byte(`{"cmd":"stats"}`))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RoundTrip to a server that does not read = %v; want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		c.Close() // unblocks the write, so goleak does not report it
		<-done
		t.Fatal("RoundTrip blocked in its write 10 s after its ctx ended")
	}
	// The cut write may have left part of a frame: the connection is gone.
	deadline := time.Now().Add(10 * time.Second)
	for c.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the connection whose write was cut is still in use")
		}
		time.Sleep(time.Millisecond)
	}
}
