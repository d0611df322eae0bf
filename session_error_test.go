package netcluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// An agent whose server says why it closes (an Error frame, then the end of
// the connection) reports that reason, not the failed write its writer met
// on the closed socket. Before, a write error took precedence over what the
// reader had read, and closing the socket at once could throw away the
// Error frame still unread: TestControlReload's agent of a removed channel
// closed with "broken pipe" about once in 150 runs; here, flooding the
// connection as the server goes, most runs did.
func TestServerErrorBeatsWriteError(t *testing.T) {
	for i := range 10 {
		if err := sessionEndedByServer(t); err != nil {
			t.Fatalf("run %d: the agent closed with %v; want the server's Error (code %d)", i, err, wire.CodeChannelGone)
		}
	}
}

// sessionEndedByServer runs one agent against a server that, once it has
// read 64 KiB of the agent's messages, sends Error and closes without
// reading more, while the agent emits as fast as it can. It returns the
// agent's disconnection error if it is not that Error.
func sessionEndedByServer(t *testing.T) error {
	t.Helper()
	dir := testutil.ShortDir(t)
	ln, err := net.Listen("unix", transport.SocketPath(dir, "E"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br, _, err := fakeWelcome(nc)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, br, 64<<10); err != nil {
			return
		}
		nc.Write(wire.AppendError(nil, wire.Error{Code: wire.CodeChannelGone, Text: `channel "E" was removed`}))
	}()
	gone := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := netcluster.Connect(ctx, "E", netcluster.WithSocketDir(dir), netcluster.WithoutReconnect(),
		netcluster.WithStateHandler(func(s netcluster.State, err error) {
			if s == netcluster.Disconnected {
				select {
				case gone <- err:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		data := []byte(strings.Repeat("x", 1000))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if a.EmitRaw(ctx, "e", data) != nil {
				return
			}
		}
	}()
	defer close(stop)
	select {
	case err := <-gone:
		var se *netcluster.ServerError
		if errors.As(err, &se) && se.Code == wire.CodeChannelGone {
			return nil
		}
		return err
	case <-ctx.Done():
		t.Fatal("the agent never saw its server go")
	}
	return nil
}
