package netcluster_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/wire"
)

// TestServerErrorIs: every protocol error code matches its error, and
// only it.
func TestServerErrorIs(t *testing.T) {
	t.Parallel()
	codes := []struct {
		code uint16
		err  error
	}{
		{wire.CodeMalformed, netcluster.ErrMalformed},
		{wire.CodeTooLarge, netcluster.ErrTooLarge},
		{wire.CodeProtocol, netcluster.ErrProtocol},
		{wire.CodeVersion, netcluster.ErrVersion},
		{wire.CodeBadHello, netcluster.ErrBadHello},
		{wire.CodeBadPattern, netcluster.ErrBadPattern},
		{wire.CodeOrigin, netcluster.ErrOrigin},
		{wire.CodeSlowConsumer, netcluster.ErrSlowConsumer},
		{wire.CodeShutdown, netcluster.ErrShutdown},
		{wire.CodeChannelGone, netcluster.ErrChannelGone},
		{wire.CodeForbidden, netcluster.ErrForbidden},
		{wire.CodeBadRequest, netcluster.ErrBadRequest},
	}
	for _, tc := range codes {
		t.Run(tc.err.Error(), func(t *testing.T) {
			var err error = &netcluster.ServerError{Code: tc.code, Text: "x"}
			wrapped := errors.Join(errors.New("context"), err)
			if !errors.Is(err, tc.err) || !errors.Is(wrapped, tc.err) {
				t.Errorf("code %d does not match %v", tc.code, tc.err)
			}
			for _, other := range codes {
				if other.code != tc.code && errors.Is(err, other.err) {
					t.Errorf("code %d matches %v too", tc.code, other.err)
				}
			}
		})
	}
	if errors.Is(&netcluster.ServerError{Code: 9999}, netcluster.ErrShutdown) {
		t.Error("an unknown code matches ErrShutdown")
	}
}

// TestServerErrorsFromServer: the errors a real server reports match
// their sentinels.
func TestServerErrorsFromServer(t *testing.T) {
	t.Parallel()
	srv, dir := startServer(t, busConfig(t, `{"channels": {"A": {}, "B": {}}}`))
	states := func() (netcluster.Option, <-chan error) {
		ch := make(chan error, 4)
		return netcluster.WithStateHandler(func(s netcluster.State, err error) {
			if s == netcluster.Disconnected {
				ch <- err
			}
		}), ch
	}
	wait := func(ch <-chan error) error {
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no disconnection")
			return nil
		}
	}

	optB, gone := states()
	connect(t, dir, "B", optB, netcluster.WithoutReconnect())
	bus := srv.Bus()
	delete(bus.Channels, "B")
	if err := srv.Reload(bus); err != nil {
		t.Fatal(err)
	}
	if err := wait(gone); !errors.Is(err, netcluster.ErrChannelGone) {
		t.Errorf("agent of a removed channel: %v; want ErrChannelGone", err)
	}

	optA, down := states()
	connect(t, dir, "A", optA, netcluster.WithoutReconnect())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wait(down); !errors.Is(err, netcluster.ErrShutdown) {
		t.Errorf("agent at shutdown: %v; want ErrShutdown", err)
	}
}

// TestConnectOptions: an option that cannot work fails Connect before
// it dials, naming the option.
func TestConnectOptions(t *testing.T) {
	t.Parallel()
	_, dir := startServer(t, nil)
	for _, tc := range []struct {
		name string
		opt  netcluster.Option
		want string // "" for valid
	}{
		{"buffer negative", netcluster.WithBufferSize(-1), "WithBufferSize(-1): the size is negative"},
		{"buffer zero", netcluster.WithBufferSize(0), ""},
		{"queue negative", netcluster.WithQueueSize(-5), "WithQueueSize(-5): the size is negative"},
		{"queue zero", netcluster.WithQueueSize(0), ""},
		{"reconnect min above max", netcluster.WithReconnectWait(time.Second, time.Millisecond), "WithReconnectWait(1s, 1ms): the minimum is above the maximum"},
		{"reconnect min zero", netcluster.WithReconnectWait(0, time.Second), "WithReconnectWait(0s, 1s): the minimum must be positive"},
		{"reconnect min negative", netcluster.WithReconnectWait(-time.Second, time.Second), "WithReconnectWait(-1s, 1s): the minimum must be positive"},
		{"reconnect equal", netcluster.WithReconnectWait(time.Millisecond, time.Millisecond), ""},
		{"id with a space", netcluster.WithAgentID("my agent"), `WithAgentID("my agent"): want 1 to 64 letters, digits, '.', '_' or '-'`},
		{"id too long", netcluster.WithAgentID(strings.Repeat("x", 65)), `WithAgentID("` + strings.Repeat("x", 65) + `"): want 1 to 64`},
		{"id empty", netcluster.WithAgentID(""), `WithAgentID(""): want 1 to 64`},
		{"id 64", netcluster.WithAgentID(strings.Repeat("x", 64)), ""},
		{"id punctuation", netcluster.WithAgentID("a.b_c-9"), ""},
		{"id slash", netcluster.WithAgentID("a/b"), `WithAgentID("a/b")`},
		{"nil dialer", netcluster.WithDialer(nil), "WithDialer: nil dial function"},
		{"nil option", nil, "a nil Option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := netcluster.Connect(ctxT(t), "A", netcluster.WithSocketDir(dir), tc.opt)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				a.Close(context.Background())
				return
			}
			if err == nil {
				a.Close(context.Background())
				t.Fatalf("Connect succeeded; want %q", tc.want)
			}
			if !errors.Is(err, netcluster.ErrInvalidOption) || !strings.HasPrefix(err.Error(), "netcluster: connect: invalid option "+tc.want) {
				t.Errorf("Connect: %v\nwant ErrInvalidOption: %s", err, tc.want)
			}
		})
	}

	// Every invalid option is named, and nothing is dialed.
	dialed := false
	dial := func(ctx context.Context, channel string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("dialed")
	}
	_, err := netcluster.Connect(ctxT(t), "A", netcluster.WithDialer(dial),
		netcluster.WithBufferSize(-1), netcluster.WithAgentID("a b"))
	if err == nil || !strings.Contains(err.Error(), "WithBufferSize(-1)") || !strings.Contains(err.Error(), `WithAgentID("a b")`) {
		t.Errorf("two invalid options: %v; want both named", err)
	}
	if dialed {
		t.Error("Connect dialed despite invalid options")
	}
}
