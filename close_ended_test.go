package netcluster_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// Close does not wait for a reconnection to send what only the ended
// connection needed: here the Stream frame every connection begins with
// (protocol 4), which the agent could not write before the server went
// away. It is made anew for a next connection; nothing the agent emitted
// is left. Close waited for a server that never came
// back (TestStaleSocketAndLiveRefusal's cleanup hung 9 minutes under load:
// its agent had connected just before the server closed).
func TestCloseAfterConnectionEndedUnwritten(t *testing.T) {
	dir := testutil.ShortDir(t)
	ln, err := net.Listen("unix", transport.SocketPath(dir, "E"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if _, err := io.ReadFull(br, make([]byte, len(wire.Preamble))); err != nil {
			return
		}
		if _, err := wire.NewReader(br, wire.DefaultMaxFrame).Next(); err != nil { // Hello
			return
		}
		// Nothing the agent writes from now on arrives: its writes fail
		// (EPIPE), what it queued stays queued.
		nc.(*net.UnixConn).CloseRead()
		nc.Write(wire.AppendWelcome(nil, wire.Welcome{Version: wire.VersionGaps, MaxFrame: wire.DefaultMaxFrame, ServerID: "0123456789abcdef"}))
		time.Sleep(100 * time.Millisecond) // the agent attaches and fails its write
	}()
	lost := make(chan struct{}, 1)
	a, err := netcluster.Connect(ctxT(t), "E", netcluster.WithSocketDir(dir),
		netcluster.WithReconnectWait(5*time.Millisecond, 50*time.Millisecond),
		netcluster.WithStateHandler(func(s netcluster.State, _ error) {
			if s == netcluster.Disconnected {
				select {
				case lost <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	<-served
	ln.Close() // the server is gone for good
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent never saw its connection end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close after %v: %v; want nil, nothing emitted is left", time.Since(start).Round(time.Millisecond), err)
	}
}
