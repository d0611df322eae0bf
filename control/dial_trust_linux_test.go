package control_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
)

// ncclient's control connection checks, as agents do, who serves a
// socket in a shared directory: a control socket bound there first by
// another user is refused, naming the path and the uid.
func TestDialRefusesImpostor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ROOT-SKIP: binding as another user needs root")
	}
	dir, err := os.MkdirTemp("", "ncctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	path := transport.SocketPath(dir, control.Channel)
	var ln net.Listener
	testutil.AsUser(t, 65534, func() { ln, err = transport.Listen(path, transport.ListenConfig{Mode: 0o666}) })
	if err != nil {
		t.Fatalf("listen as nobody: %v", err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, path, nil)
	if err == nil {
		c.Close()
		t.Fatal("control.Dial reached a control socket served by uid 65534 in a shared directory")
	}
	if !errors.Is(err, transport.ErrImpostor) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("err = %v, want ErrImpostor naming %s and uid 65534", err, path)
	}
}
