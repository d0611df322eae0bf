package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/internal/transport"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a control client to the server in dir and closes it at
// the end of the test.
func dial(t testing.TB, dir string, o *control.Options) *control.Client {
	t.Helper()
	c, err := control.Dial(testCtx(t), transport.SocketPath(dir, control.Channel), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientCalls(t *testing.T) {
	t.Parallel()
	srv, dir := testserver.StartServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}, "B": {}}}`), "")
	a, err := netcluster.Connect(testCtx(t), "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("agent-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	c := dial(t, dir, &control.Options{AgentID: "ops"})
	ctx := testCtx(t)

	names, err := c.Channels(ctx)
	if err != nil || strings.Join(names, ",") != "A,B,control" {
		t.Errorf("Channels = %v, %v", names, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.NodeID != srv.NodeID() || st.Agents != 2 || len(st.Channels) != 3 || st.Totals.Name != "*" {
		t.Errorf("Stats = %+v, %v; want node %s, 2 agents, 3 channels", st, err, srv.NodeID())
	}
	ci, err := c.Channel(ctx, control.Channel)
	if err != nil || len(ci.Agents) != 1 || ci.Agents[0].ID != "ops" {
		t.Errorf("Channel(control) = %+v, %v; want the client as agent ops", ci, err)
	}
	ai, err := c.Agent(ctx, "A", "agent-a")
	if err != nil || ai.ID != "agent-a" || ai.Channel != "A" {
		t.Errorf("Agent(A, agent-a) = %+v, %v", ai, err)
	}
	cfg, err := c.Config(ctx)
	var shown map[string]any
	if err != nil || json.Unmarshal(cfg, &shown) != nil || shown["channels"] == nil {
		t.Errorf("Config = %s, %v", cfg, err)
	}
	path := filepath.Join(dir, "nc.jsonc")
	if err := os.WriteFile(path, []byte(`{"channels": {"A": {}, "C": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := c.ReloadConfig(ctx, path)
	if err != nil || strings.Join(res.Added, ",") != "C" || strings.Join(res.Removed, ",") != "B" {
		t.Errorf("ReloadConfig = %+v, %v", res, err)
	}

	// An error reply is the call's error; the connection stays.
	if _, err := c.Channel(ctx, "Z"); err == nil || !strings.HasPrefix(err.Error(), `unknown channel "Z"`) {
		t.Errorf("Channel(Z) = %v", err)
	}
	if _, err := c.Do(ctx, control.Request{Cmd: "frob"}); err == nil || !strings.HasPrefix(err.Error(), `unknown command "frob"`) {
		t.Errorf("Do(frob) = %v", err)
	}
	b, err := c.RoundTrip(ctx, []byte(`{"cmd":"stats","bogus":1}`))
	if err != nil || !strings.Contains(string(b), `unknown field`) {
		t.Errorf("RoundTrip(bogus) = %s, %v", b, err)
	}
	if !c.Connected() {
		t.Error("error replies closed the connection")
	}

	// Concurrent calls each get their own reply.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := []string{"A", "C", control.Channel}[i%3]
			ci, err := c.Channel(ctx, ch)
			if err != nil || ci.Name != ch {
				t.Errorf("Channel(%s) = %+v, %v", ch, ci, err)
			}
		}()
	}
	wg.Wait()

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, control.ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
	if _, err := c.Stats(ctx); !errors.Is(err, control.ErrClosed) {
		t.Errorf("Stats after Close = %v; want ErrClosed", err)
	}
}

func TestDialNoServer(t *testing.T) {
	t.Parallel()
	path := transport.SocketPath(testutil.ShortDir(t), control.Channel)
	_, err := control.Dial(testCtx(t), path, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Dial with no server = %v; want an error naming %s", err, path)
	}
}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	_, dir := testserver.StartServer(t, nil, "")
	_, err := control.Dial(testCtx(t), transport.SocketPath(dir, control.Channel), &control.Options{AgentID: "has space"})
	var se *control.ServerError
	if !errors.As(err, &se) || se.Code == 0 {
		t.Errorf("Dial with a bad agent id = %v; want a ServerError", err)
	}
}

func TestClientLost(t *testing.T) {
	t.Parallel()
	srv, dir := testserver.StartServer(t, nil, "")
	lost := make(chan error, 1)
	c := dial(t, dir, &control.Options{OnState: func(connected bool, err error) {
		if !connected {
			lost <- err
		}
	}})
	srv.Close()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("no state change after the server closed")
	}
	if c.Connected() {
		t.Error("Connected after the server closed")
	}
	if _, err := c.Stats(testCtx(t)); !errors.Is(err, control.ErrNotConnected) {
		t.Errorf("Stats without Reconnect = %v; want ErrNotConnected", err)
	}
}

func TestClientReconnect(t *testing.T) {
	t.Parallel()
	bus := testserver.ParseConfig(t, `{"channels": {"A": {}}}`)
	srv, dir := testserver.StartServer(t, bus.Clone(), "")
	states := make(chan bool, 4)
	c := dial(t, dir, &control.Options{Reconnect: true, OnState: func(connected bool, err error) { states <- connected }})
	srv.Close()
	if got := <-states; got {
		t.Fatal("first state change is connected; want lost")
	}
	srv2, _ := testserver.StartServer(t, bus.Clone(), dir)
	st, err := c.Stats(testCtx(t))
	if err != nil || st.NodeID != srv2.NodeID() {
		t.Fatalf("Stats after the restart = %+v, %v; want node %s", st, err, srv2.NodeID())
	}
	if got := <-states; !got {
		t.Error("second state change is lost; want connected")
	}

	// With no server, a call waits for one until its ctx ends.
	srv2.Close()
	<-states
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Stats(ctx); !errors.Is(err, control.ErrNotConnected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stats with no server = %v; want ErrNotConnected and the deadline", err)
	}
}
