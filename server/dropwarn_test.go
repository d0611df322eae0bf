package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// Messages dropped for a consumer that does not read are logged as a
// warning, once for the burst, not once per message.
func TestDropsLoggedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var log testutil.SyncBuffer
	bus, err := config.Parse([]byte(`{"outbuffer": 65536, "channels": {"S": {}}}`), "drops.jsonc")
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.ShortDir(t)
	bus.SocketDir = dir
	s, err := New(Config{Bus: bus, Console: io.Discard, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A consumer of everything that never reads.
	nc, err := transport.Dial(ctx, transport.SocketPath(dir, "S"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "stuck", Channel: "S"})...)
	hello = wire.AppendListen(hello, wire.TypeListen, ".*")
	hello = wire.AppendU64(hello, wire.TypePing, 1)
	nc.Write(hello)
	rd := wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)
	for _, want := range []byte{wire.TypeWelcome, wire.TypePong} {
		if f, err := rd.Next(); err != nil || f.Type != want {
			t.Fatalf("stuck consumer got %v, %v", f.Type, err)
		}
	}
	a, err := netcluster.Connect(ctx, "S", netcluster.WithSocketDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	big := make([]byte, 32<<10)
	for range 200 {
		a.EmitRaw(ctx, "big", big)
	}
	a.Flush(ctx)
	ag, _ := s.Agent("S", "stuck")
	if ag.Dropped == 0 {
		t.Fatal("no drops for the consumer that never reads")
	}
	if n := strings.Count(log.String(), "slow consumer: messages dropped"); n != 1 {
		t.Fatalf("%d drop warnings for %d drops, want 1:\n%s", n, ag.Dropped, log.String())
	}
	if !strings.Contains(log.String(), "level=WARN msg=\"slow consumer: messages dropped\" channel=S agent=stuck") {
		t.Errorf("warning lacks its level, channel or agent:\n%s", log.String())
	}
}
