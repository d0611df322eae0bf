//go:build linux

package server

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// Agents that send nothing more hold no read buffer: each reader gives
// its buffer back while it waits between frames, and takes one again when
// a frame arrives, which it reads and acts on as before (S8: 1,000 idle
// agents held 32 KiB of heap each). Nor does any writer run for them:
// their Welcome and Pong are written in place, and a writer started for
// messages ends once idle; another starts for the next ones. Nor any
// reader: each parks its connection after parkAfter, and a reader starts
// again for what the agent sends.
func TestIdleAgentsHoldNoReadBuffer(t *testing.T) {
	s := lifecycleServer(t, nil)
	ch := s.channels["A"]
	const n = 20
	agents := make([]*net.UnixConn, n)
	for i := range agents {
		server, agent := unixPair(t)
		ch.serve(server)
		b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "idle" + string(rune('a'+i)), Channel: "A"})...)
		b = wire.AppendListen(b, wire.TypeListen, "ev")
		if _, err := agent.Write(b); err != nil {
			t.Fatal(err)
		}
		agents[i] = agent
	}
	waitUntil(t, "the agents joined", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == n })
	waitUntil(t, "the idle readers gave their buffers back", func() bool { return s.inputs.Load() == 0 })
	writers := func() (n int) {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		for c := range ch.conns {
			if c.writerUp.Load() {
				n++
			}
		}
		return n
	}
	if n := writers(); n != 0 {
		t.Fatalf("%d writers run for agents that were written only their Welcome", n)
	}
	// Nor do they hold what only writers, or agents that fell behind,
	// need (made when first needed: writer, slowLocked).
	ch.mu.Lock()
	var conns []*conn
	for c := range ch.conns {
		conns = append(conns, c)
	}
	ch.mu.Unlock()
	for _, c := range conns {
		c.omu.Lock()
		slow := c.slow != nil
		c.omu.Unlock()
		if c.wc.Load() != nil || slow {
			t.Fatalf("agent %s, written only its Welcome, holds its writers' channels (%v) or a slowState (%v)", c.id, c.wc.Load() != nil, slow)
		}
	}
	waitUntil(t, "the idle readers parked", func() bool { return parkedConns(s) == n })

	// The first agent's reader wakes for what it sends: a Ping is
	// answered, a message routed to every other agent, twice, the second
	// time once the writers started for the first have ended.
	readers := make([]*wire.Reader, n)
	for i, a := range agents {
		readers[i] = wire.NewReader(bufio.NewReader(a), wire.DefaultMaxFrame)
	}
	for round := range 2 {
		frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "idlea", Event: "ev", Data: []byte{byte(round)}})
		if _, err := agents[0].Write(append(wire.AppendU64(nil, wire.TypePing, 7), frame...)); err != nil {
			t.Fatal(err)
		}
		for i, a := range agents {
			a.SetReadDeadline(time.Now().Add(10 * time.Second))
			want := byte(wire.TypeMsg)
			if i == 0 {
				want = wire.TypePong
			}
			for {
				f, err := readers[i].Next()
				if err != nil {
					t.Fatalf("round %d, agent %d: %v", round, i, err)
				}
				if f.Type == want && (want == wire.TypePong || f.Payload[len(f.Payload)-1] == byte(round)) {
					break
				}
			}
		}
		waitUntil(t, "the readers gave their buffers back again", func() bool { return s.inputs.Load() == 0 })
		waitUntil(t, "the writers ended", func() bool { return writers() == 0 })
		waitUntil(t, "the readers parked again", func() bool { return parkedConns(s) == n })
	}
	for _, a := range agents {
		a.Close()
	}
	waitUntil(t, "the readers of the agents that left gave their buffers back", func() bool { return s.inputs.Load() == 0 })
}

// parkedConns is how many connections of s are parked.
func parkedConns(s *Server) int {
	s.parked.mu.Lock()
	defer s.parked.mu.Unlock()
	return len(s.parked.conns)
}

// Shutdown tells parked agents it is going away and ends their
// connections (a parked reader is resumed when its connection closes),
// and the parker's goroutine ends with the last of them (goleak).
func TestShutdownEndsParkedAgents(t *testing.T) {
	s := lifecycleServer(t, nil)
	ch := s.channels["A"]
	const n = 5
	agents := make([]*net.UnixConn, n)
	for i := range agents {
		server, agent := unixPair(t)
		ch.serve(server)
		b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "parked" + string(rune('a'+i)), Channel: "A"})...)
		if _, err := agent.Write(b); err != nil {
			t.Fatal(err)
		}
		agents[i] = agent
	}
	waitUntil(t, "the readers parked", func() bool { return parkedConns(s) == n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, a := range agents {
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		rd := wire.NewReader(bufio.NewReader(a), wire.DefaultMaxFrame)
		for {
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("agent %d: %v before the shutdown's error", i, err)
			}
			if f.Type == wire.TypeError {
				if e, _ := wire.ParseError(f.Payload); e.Code != wire.CodeShutdown {
					t.Fatalf("agent %d: error %d, want shutdown", i, e.Code)
				}
				break
			}
		}
	}
	if got := parkedConns(s); got != 0 {
		t.Fatalf("%d connections parked after shutdown", got)
	}
}

// A reader that reaches its park while another goroutine closes its
// connection (after close has unparked, before the socket is closed) does
// not park: parked then, nothing would resume it, and Shutdown would wait
// for its connection for ever.
func TestParkWhileClosing(t *testing.T) {
	s := lifecycleServer(t, nil)
	ch := s.channels["A"]
	server, agent := unixPair(t)
	ch.serve(server)
	b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "closing", Channel: "A"})...)
	if _, err := agent.Write(b); err != nil {
		t.Fatal(err)
	}
	var c *conn
	waitUntil(t, "the connection", func() bool {
		s.liveMu.Lock()
		defer s.liveMu.Unlock()
		for l := range s.live {
			c = l
		}
		return c != nil
	})
	testHookClosing = func(*conn) {
		// Long past parkAfter: the reader tries to park meanwhile.
		deadline := time.Now().Add(10 * parkAfter)
		for parkedConns(s) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	defer func() { testHookClosing = nil }()
	c.close()
	testHookClosing = nil
	if got := parkedConns(s); got != 0 {
		s.parked.unpark(c) // so that the server can end
		t.Fatalf("%d connections parked after their close: nothing would resume them", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
