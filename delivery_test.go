package netcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/wire"
	"github.com/netcluster/netcluster/server"
)

func TestLargeMessageAndBurst(t *testing.T) {
	bus := busConfig(t, `{"maxframe": 67108864, "channels": {"A": {}}}`)
	_, dir := startServer(t, bus)
	src := connect(t, dir, "A")
	dst := connect(t, dir, "A")
	r := listen(t, dst, ".*")

	big := make([]byte, 32<<20)
	rand.Read(big)
	ctx := ctxT(t)
	if err := src.EmitRaw(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for i := range n {
		if err := src.Emit(ctx, "small", i); err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitN(t, n+1)
	if got[0].Event != "big" || !bytes.Equal(got[0].Data, big) || got[0].JSON {
		t.Fatalf("first message: event %q, %d bytes, intact %v", got[0].Event, len(got[0].Data), bytes.Equal(got[0].Data, big))
	}
	for i, m := range got[1:] {
		var v int
		if err := m.Decode(&v); err != nil || v != i {
			t.Fatalf("message %d: %v %d", i, err, v)
		}
	}
}

func TestInProcessDial(t *testing.T) {
	srv, err := server.New(server.Config{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(srv.Addrs()) != 0 {
		t.Fatalf("NoListen server listens on %v", srv.Addrs())
	}
	a, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(srv.Dial))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := netcluster.Connect(ctx, "B", netcluster.WithDialer(srv.Dial))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	r := listen(t, b, "hello")
	if err := a.Emit(ctx, "hello", "world"); err != nil {
		t.Fatal(err)
	}
	m := r.waitN(t, 1)[0]
	var s string
	if err := m.Decode(&s); err != nil || s != "world" || m.Channel != "A" || m.Agent != a.ID() {
		t.Fatalf("got %+v (%v)", m, err)
	}
	if _, err := netcluster.Connect(ctx, "nochannel", netcluster.WithDialer(srv.Dial)); err == nil || !strings.Contains(err.Error(), "nochannel") {
		t.Fatalf("unknown channel: %v", err)
	}
}

// A client speaking the original's wire on channel L and a native agent
// on channel A exchange messages both ways.
func TestLegacyInterop(t *testing.T) {
	_, dir := startServer(t, busConfig(t, `{"channels": {
		"A": {"propagatetochannels": "L"},
		"L": {"propagatetochannels": "A"},
	}}`))
	native := connect(t, dir, "A")
	r := listen(t, native, ".*")

	lc, err := net.Dial("unix", filepath.Join(dir, "netcluster-L"))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	// Exactly what the Node original wrote.
	if _, err := lc.Write([]byte(`{"channel":"L","broadcast":false,"event":"log","data":{"x":1}}` + "\x00")); err != nil {
		t.Fatal(err)
	}
	m := r.waitN(t, 1)[0]
	if m.Event != "log" || m.Channel != "L" || !m.JSON || string(m.Data) != `{"x":1}` || !strings.HasPrefix(m.Agent, "legacy-") {
		t.Fatalf("native got %+v data %s", m, m.Data)
	}

	ctx := ctxT(t)
	if err := native.Emit(ctx, "reply", map[string]string{"ok": "yes"}); err != nil {
		t.Fatal(err)
	}
	if err := native.EmitRaw(ctx, "raw", []byte("plain text")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(lc)
	lc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{
		`{"channel":"A","broadcast":false,"event":"reply","data":{"ok":"yes"}}`,
		`{"channel":"A","broadcast":false,"event":"raw","data":"plain text"}`,
	} {
		line, err := br.ReadString(0)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(line, "\x00"); got != want {
			t.Fatalf("legacy got %s, want %s", got, want)
		}
	}

	// A malformed envelope: the legacy client is told and closed, nobody
	// else notices.
	lc.Write([]byte("{not json}\x00"))
	line, err := br.ReadString(0)
	if err != nil || !strings.Contains(line, `"event":"nc-error"`) || !strings.Contains(line, "not valid JSON") {
		t.Fatalf("after bad envelope: %q, %v", line, err)
	}
	if _, err := br.ReadString(0); err == nil {
		t.Fatal("connection still open after a bad envelope")
	}
	if err := native.Emit(ctx, "still", 1); err != nil {
		t.Fatal(err)
	}
	if got := r.waitN(t, 4); got[3].Event != "still" {
		t.Fatalf("native agent after legacy failure got %v", events(got))
	}
}

func TestStaleSocketAndLiveRefusal(t *testing.T) {
	dir := testutil.ShortDir(t)
	// A stale socket file: bound, then left behind as after a crash.
	path := filepath.Join(dir, "netcluster-A")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	bus := config.Default()
	bus.SocketDir = dir
	srv, err := server.New(server.Config{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctxT(t)); err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	defer srv.Close()
	connect(t, dir, "A")

	second, err := server.New(server.Config{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "live server") {
		t.Fatalf("second server: %v, want a refusal naming the path", err)
	}
	// The refused server removed nothing: the first still serves.
	connect(t, dir, "B")
}

// An agent that never reads does not slow the others, and the server
// keeps at most its outbuffer for it.
func TestSlowConsumer(t *testing.T) {
	for _, policy := range []string{"drop", "disconnect"} {
		t.Run(policy, func(t *testing.T) {
			bus := busConfig(t, `{"outbuffer": 65536, "slowconsumer": "`+policy+`", "channels": {"A": {}}}`)
			srv, dir := startServer(t, bus)
			src := connect(t, dir, "A")
			fast := connect(t, dir, "A")
			r := listen(t, fast, "x")

			// The slow one: a raw native client that listens and never reads.
			var (
				mu     sync.Mutex
				errs   []error
				states []netcluster.State
			)
			slow := connect(t, dir, "A",
				netcluster.WithQueueSize(1), // stop reading at once
				netcluster.WithErrorHandler(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }),
				netcluster.WithStateHandler(func(s netcluster.State, err error) { mu.Lock(); states = append(states, s); mu.Unlock() }),
			)
			block := make(chan struct{})
			var unblock sync.Once
			release := func() { unblock.Do(func() { close(block) }) }
			t.Cleanup(release)
			slow.On("x", func(*netcluster.Message) { <-block })
			slow.Flush(ctxT(t))
			if policy == "disconnect" {
				// The slow agent reads again as soon as the server has
				// disconnected it: the server lingers a bounded time for
				// it, and the error frame must come after what it reads.
				ctx := ctxT(t)
				go func() {
					for ; ctx.Err() == nil; time.Sleep(time.Millisecond) {
						if ci, _ := srv.Channel("A"); ci.Slow > 0 {
							break
						}
					}
					release()
				}()
			}

			// The sender goes at the fast agent's pace, which the slow
			// one must not change: every message reaches the fast one.
			// It waits for the fast one after each step of what fits in
			// its outbox (its frames, protocol version 3, as the server
			// forwards them), so that a busy machine, where the fast
			// one's reader or the server's writer for it may not run for
			// a while, does not make it a slow consumer too.
			const n = 20000
			payload := strings.Repeat("p", 100)
			data, _ := json.Marshal(payload)
			step := 65536 / wire.SeqMsgSize(&wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: src.ID(), Event: "x", Data: data})
			ctx := ctxT(t)
			for i := range n {
				if err := src.Emit(ctx, "x", payload); err != nil {
					t.Fatal(err)
				}
				if (i+1)%step == 0 || i+1 == n {
					r.waitN(t, i+1)
				}
			}
			if got := r.all(); len(got) != n {
				t.Fatalf("fast agent got %d messages, want %d", len(got), n)
			}
			info, ok := srv.Agent("A", slow.ID())
			switch policy {
			case "drop":
				if !ok || info.Dropped == 0 {
					t.Fatalf("slow agent: %+v, want drops counted", info)
				}
				if info.Queued > 65536 {
					t.Fatalf("slow agent has %d bytes queued, bound 65536", info.Queued)
				}
				release()
				// The slow agent learns how many it lost.
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					var de *netcluster.DroppedError
					found := len(errs) > 0 && errors.As(errs[0], &de) && de.Count > 0
					mu.Unlock()
					if found {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no DroppedError reported; errors %v", errs)
					}
					time.Sleep(5 * time.Millisecond)
				}
			case "disconnect":
				release()
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					var se *netcluster.ServerError
					found := len(errs) > 0 && errors.As(errs[0], &se) && strings.Contains(se.Text, "slow consumer")
					mu.Unlock()
					if found {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("slow agent not told it was disconnected; errors %v states %v", errs, states)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
}

// Kill the server and start another on the same sockets: agents
// reconnect and listen again, with no handler lost.
func TestReconnectAfterServerRestart(t *testing.T) {
	dir := testutil.ShortDir(t)
	bus := config.Default()
	bus.SocketDir = dir
	start := func() *server.Server {
		srv, err := server.New(server.Config{Bus: bus})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	var mu sync.Mutex
	var states []netcluster.State
	dst := connect(t, dir, "B", netcluster.WithStateHandler(func(s netcluster.State, err error) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	}))
	src := connect(t, dir, "A")
	r := listen(t, dst, "ev")
	ctx := ctxT(t)
	src.Emit(ctx, "ev", 1)
	r.waitN(t, 1)

	srv.Close() // as abrupt as a crash, for the agents
	srv = start()
	defer srv.Close()

	// Messages emitted while reconnecting are buffered, then sent.
	if err := src.Emit(ctx, "ev", 2); err != nil {
		t.Fatal(err)
	}
	if err := dst.Flush(ctx); err != nil { // waits for the reconnection
		t.Fatal(err)
	}
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	src.Emit(ctx, "ev", 3)
	got := r.waitN(t, 2)
	var last int
	json.Unmarshal(got[len(got)-1].Data, &last)
	if last != 3 && len(got) < 3 {
		r.waitN(t, 3)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) < 2 || states[0] != netcluster.Disconnected || states[1] != netcluster.Connected {
		t.Fatalf("states %v, want disconnected then connected", states)
	}
}

func TestCloseFlushesAndLeavesNothing(t *testing.T) {
	_, dir := startServer(t, nil)
	dst := connect(t, dir, "A")
	r := listen(t, dst, "x")
	src, err := netcluster.Connect(ctxT(t), "A", netcluster.WithSocketDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		src.Emit(ctxT(t), "x", i)
	}
	if err := src.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r.waitN(t, n)
	if err := src.Close(context.Background()); err != netcluster.ErrClosed {
		t.Fatalf("second Close: %v", err)
	}
}
