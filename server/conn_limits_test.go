package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// A connection past a limit is refused with an error naming the limit, in
// the agent's own wire, and counted; one freed lets the next in.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"maxconnections": 4, "maxchannelconnections": 2, "maxuidconnections": 3, "channels": {"A": {}, "B": {}}}`)
	dial := func(channel string) (*netcluster.Agent, error) {
		return netcluster.Connect(ctlCtx(t), channel, netcluster.WithSocketDir(dir), netcluster.WithReconnectWait(5*time.Millisecond, 50*time.Millisecond))
	}
	wantRefused := func(channel, key string) {
		t.Helper()
		a, err := dial(channel)
		var se *netcluster.ServerError
		if err == nil {
			a.Close(context.Background())
			t.Fatalf("channel %s: connected past %s", channel, key)
		}
		if !errors.As(err, &se) || se.Code != wire.CodeForbidden || !strings.Contains(se.Text, key) {
			t.Fatalf("channel %s: %v, want a refusal naming %s", channel, err, key)
		}
	}
	a1 := ctlAgent(t, dir, "A")
	ctlAgent(t, dir, "A")
	wantRefused("A", "maxchannelconnections 2")

	// A legacy agent that only listens, over the limit, gets the
	// nc-error event.
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	env, err := bufio.NewReader(nc).ReadBytes(0)
	if err != nil || !bytes.Contains(env, []byte(`"nc-error"`)) || !bytes.Contains(env, []byte("maxchannelconnections")) {
		t.Fatalf("legacy listener over the limit got %q, %v", env, err)
	}

	ctlAgent(t, dir, "B")
	if os.Getuid() >= 0 {
		wantRefused("B", "maxuidconnections 3")
	}
	if ci, _ := srv.Channel("A"); ci.Refused != 2 {
		t.Fatalf("channel A counted %d refusals, want 2", ci.Refused)
	}

	// In-process agents have no uid: the total limit applies.
	b2, err := srv.Dial(ctlCtx(t), "B")
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	b3, err := srv.Dial(ctlCtx(t), "B")
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	b3.Write([]byte(wire.Preamble))
	rd := wire.NewReader(bufio.NewReader(b3), wire.DefaultMaxFrame)
	b3.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := rd.Next()
	if err != nil || f.Type != wire.TypeError {
		t.Fatalf("in-process connection past maxconnections: %v %v", f, err)
	}
	if e, _ := wire.ParseError(f.Payload); !strings.Contains(e.Text, "maxconnections 4") {
		t.Fatalf("refusal %q does not name maxconnections", e.Text)
	}
	b2.Close()

	// A connection closed makes room.
	a1.Close(context.Background())
	waitUntil(t, "a connection to A freed", func() bool {
		a, err := dial("A")
		if err == nil {
			a.Close(context.Background())
		}
		return err == nil
	})
}

var _ net.Conn = stuckSink{}
