// Package testserver starts a netcluster server for one test. It is apart
// from package testutil, which the server's own tests use, because it
// imports the server.
package testserver

import (
	"context"
	"io"
	"testing"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/server"
)

// ParseConfig parses a JWCC config, failing the test on error.
func ParseConfig(t testing.TB, src string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(src), t.Name()+".jsonc")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StartServer starts a server on bus (nil: the default) listening in dir
// ("": a new testutil.ShortDir), and closes it at the end of the test. It
// returns the server and its socket directory.
func StartServer(t testing.TB, bus *config.Config, dir string) (*server.Server, string) {
	t.Helper()
	if bus == nil {
		bus = config.Default()
	}
	if dir == "" {
		dir = testutil.ShortDir(t)
	}
	bus.SocketDir = dir
	srv, err := server.New(server.Config{Bus: bus, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, dir
}
