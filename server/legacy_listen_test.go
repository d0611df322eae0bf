package server

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// A legacy agent that only listens, as the original Node receiver does,
// gets what is sent to its channel from its first moment, not only once
// its silence has marked it legacy; a native agent gets none of what was
// queued before its preamble.
func TestLegacyListenerFromFirstMoment(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	legacy, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	native, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	time.Sleep(300 * time.Millisecond)

	src := ctlAgent(t, dir, "A")
	if err := src.Emit(ctlCtx(t), "hello", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := src.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}

	// The native agent speaks now: it gets its Welcome first, then nothing
	// of what was routed to it while its wire was unknown.
	r := &ctlRaw{t: t, nc: native, rd: wire.NewReader(bufio.NewReader(native), wire.DefaultMaxFrame)}
	r.write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "late", Channel: "A"})...))
	if f := r.next(); f.Type != wire.TypeWelcome {
		t.Fatalf("native agent got %s first, want welcome", wire.TypeName(f.Type))
	}
	if got := r.sync(7); len(got) != 0 {
		t.Fatalf("native agent got %d frames queued before its preamble (first %s)", len(got), wire.TypeName(got[0].Type))
	}

	legacy.SetReadDeadline(time.Now().Add(5 * time.Second))
	env, err := bufio.NewReader(legacy).ReadBytes(0)
	if err != nil {
		t.Fatalf("legacy listener started 0.3 s before the sender got nothing: %v", err)
	}
	if !bytes.Contains(env, []byte(`"event":"hello"`)) || !bytes.Contains(env, []byte(`"data":{"n":1}`)) {
		t.Fatalf("legacy listener got %q", env)
	}
}
