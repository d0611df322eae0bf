//go:build linux

package server

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// Agents that send nothing more hold no read buffer: each reader gives
// its buffer back while it waits between frames, and takes one again when
// a frame arrives, which it reads and acts on as before (S8: 1,000 idle
// agents held 32 KiB of heap each).
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

	// The first agent's readers wake for what it sends: a Ping is
	// answered, a message routed to every other agent.
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "idlea", Event: "ev", Data: []byte("x")})
	if _, err := agents[0].Write(append(wire.AppendU64(nil, wire.TypePing, 7), frame...)); err != nil {
		t.Fatal(err)
	}
	for i, a := range agents {
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		rd := wire.NewReader(bufio.NewReader(a), wire.DefaultMaxFrame)
		want := byte(wire.TypeMsg)
		if i == 0 {
			want = wire.TypePong
		}
		for {
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("agent %d: %v", i, err)
			}
			if f.Type == want {
				break
			}
		}
	}
	waitUntil(t, "the readers gave their buffers back again", func() bool { return s.inputs.Load() == 0 })
	for _, a := range agents {
		a.Close()
	}
	waitUntil(t, "the readers of the agents that left gave their buffers back", func() bool { return s.inputs.Load() == 0 })
}
