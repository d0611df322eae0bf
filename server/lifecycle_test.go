package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

func lifecycleServer(t testing.TB, edit func(*config.Config)) *Server {
	t.Helper()
	bus := config.New()
	bus.Channels["A"] = &config.Channel{}
	if edit != nil {
		edit(bus)
	}
	s, err := New(Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawAgent connects a native agent on channel A that listens to patterns
// and reads nothing.
func rawAgent(t *testing.T, s *Server, id string, patterns ...string) net.Conn {
	t.Helper()
	nc, err := s.Dial(context.Background(), "A")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: id, Channel: "A"})...)
	for _, p := range patterns {
		b = wire.AppendListen(b, wire.TypeListen, p)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	return nc
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntilFor(t, 10*time.Second, what, cond)
}

func waitUntilFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A slow consumer disconnected by policy loses its connection even though
// it never reads the error frame.
func TestDisconnectedSlowConsumerIsClosed(t *testing.T) {
	s := lifecycleServer(t, func(bus *config.Config) {
		bus.OutBuffer = 64 << 10
		bus.SlowConsumer = config.SlowConsumerDisconnect
	})
	rawAgent(t, s, "slow", ".*") // never reads
	snd := rawAgent(t, s, "snd")
	go io.Copy(io.Discard, snd)
	waitUntil(t, "both agents joined", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == 2 })
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "snd", Event: "e", Data: make([]byte, 4096)})
	for range 3000 { // 12 MB: far past the pipe's buffer and the outbox
		snd.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := snd.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	// The writer gives the agent slowLinger to read its error frame,
	// which it never does: the connection closes after that.
	waitUntilFor(t, slowLinger+10*time.Second, "the slow consumer's connection closed", func() bool {
		_, member := s.Agent("A", "slow")
		return !member
	})
	if ci, _ := s.Channel("A"); ci.Slow == 0 {
		t.Fatal("not counted as a slow consumer")
	}
}

// Close does not wait for a connection that never finishes its handshake.
func TestCloseDoesNotWaitForHandshake(t *testing.T) {
	s := lifecycleServer(t, nil)
	nc, err := s.Dial(context.Background(), "A")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("NC")) // half a preamble, then nothing
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// An agent of the Node original that only listens writes nothing; after
// legacyWait of silence it is a legacy member and receives its channel.
func TestSilentLegacyListener(t *testing.T) {
	s := lifecycleServer(t, nil)
	nc, err := s.Dial(context.Background(), "A")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitUntil(t, "the silent agent joined as legacy", func() bool {
		ci, _ := s.Channel("A")
		return len(ci.Agents) == 1 && ci.Agents[0].Legacy
	})
	snd := rawAgent(t, s, "snd")
	go io.Copy(io.Discard, snd)
	snd.Write(wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "snd", Event: "log", Data: []byte(`"TESTE"`)}))
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	want := `{"channel":"A","broadcast":false,"event":"log","data":"TESTE"}` + "\x00"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
		t.Fatalf("legacy listener got %q (%v), want %q", got, err, want)
	}
}
