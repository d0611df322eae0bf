package netcluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/wire"
	"github.com/netcluster/netcluster/server"
)

// The request/reply tests run against a server on sockets and, for the
// same semantics in process, on an embedded server's Dial.

const callTopology = `{
  "channels": {
    "control": {},
    "A": {"propagatetochannels": "B"},
    "B": {},
    "C": {},
  },
}`

// callEnv connects agents to one server, over sockets or in memory.
type callEnv struct {
	srv  *server.Server
	dir  string
	dial bool
}

func callEnvs(t *testing.T, run func(t *testing.T, e *callEnv)) {
	for _, dial := range []bool{false, true} {
		name := "socket"
		if dial {
			name = "in-process"
		}
		t.Run(name, func(t *testing.T) {
			srv, dir := startServer(t, busConfig(t, callTopology))
			run(t, &callEnv{srv: srv, dir: dir, dial: dial})
		})
	}
}

func (e *callEnv) connect(t testing.TB, channel string, opts ...netcluster.Option) *netcluster.Agent {
	t.Helper()
	if e.dial {
		opts = append(opts, netcluster.WithDialer(e.srv.Dial))
	}
	return connect(t, e.dir, channel, opts...)
}

// answer makes a answer every request matching pattern with f's result.
func answer(t testing.TB, a *netcluster.Agent, pattern string, f func(m *netcluster.Message) any) {
	t.Helper()
	if _, err := a.On(pattern, func(m *netcluster.Message) {
		if !m.IsRequest() {
			return
		}
		if err := m.Reply(context.Background(), f(m)); err != nil {
			t.Errorf("reply: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func decode[T any](t testing.TB, m *netcluster.Message) T {
	t.Helper()
	var v T
	if err := m.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRequestReply(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		req := e.connect(t, "A", netcluster.WithAgentID("req"))
		resp := e.connect(t, "A", netcluster.WithAgentID("resp"))
		other := e.connect(t, "A")
		answer(t, resp, "upper", func(m *netcluster.Message) any { return strings.ToUpper(decode[string](t, m)) })
		seen := listen(t, other, ".*") // a plain listener that does not answer

		got, err := req.Request(ctxT(t), "upper", "abc")
		if err != nil {
			t.Fatal(err)
		}
		if s := decode[string](t, got); s != "ABC" || got.Agent != "resp" || got.Channel != "A" || got.Event != "upper" || !got.JSON || got.IsRequest() {
			t.Fatalf("reply %q from %s/%s event %q json %v request %v", s, got.Channel, got.Agent, got.Event, got.JSON, got.IsRequest())
		}
		// The other listener saw the request as a request, and no reply.
		for _, a := range []*netcluster.Agent{req, resp} {
			if err := a.Flush(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
		msgs := seen.waitN(t, 1)
		if err := other.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if msgs = seen.all(); len(msgs) != 1 || !msgs[0].IsRequest() || msgs[0].Agent != "req" {
			t.Fatalf("the plain listener got %d messages: %+v", len(msgs), msgs)
		}

		// Raw in, raw out.
		echo := e.connect(t, "A")
		if _, err := echo.On("raw", func(m *netcluster.Message) { m.ReplyRaw(context.Background(), append([]byte("re:"), m.Data...)) }); err != nil {
			t.Fatal(err)
		}
		echo.Flush(ctxT(t))
		got, err = req.RequestRaw(ctxT(t), "raw", []byte{0, 1})
		if err != nil || string(got.Data) != "re:\x00\x01" || got.JSON {
			t.Fatalf("raw reply %q json %v, %v", got.Data, got.JSON, err)
		}
	})
}

func TestRequestConcurrentRequesters(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		resp := e.connect(t, "A")
		answer(t, resp, "echo", func(m *netcluster.Message) any { return decode[string](t, m) })
		var wg sync.WaitGroup
		for r := range 2 {
			a := e.connect(t, "A", netcluster.WithAgentID(fmt.Sprint("r", r)))
			for i := range 50 {
				wg.Go(func() {
					want := fmt.Sprintf("%s-%d", a.ID(), i)
					got, err := a.Request(ctxT(t), "echo", want)
					if err != nil {
						t.Error(err)
						return
					}
					if s := decode[string](t, got); s != want {
						t.Errorf("requester %s got %q, want %q", a.ID(), s, want)
					}
				})
			}
		}
		wg.Wait()
	})
}

func TestRequestTimeout(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		req := e.connect(t, "A")
		silent := e.connect(t, "A")
		listen(t, silent, "slow") // listens, never answers
		ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
		defer cancel()
		_, err := req.Request(ctx, "slow", nil)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `request "slow"`) {
			t.Fatalf("Request = %v, want a deadline error naming the request", err)
		}
	})
}

func TestRequestNoResponders(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		req := e.connect(t, "A")
		// On C, which A does not propagate to, a listener changes nothing.
		listen(t, e.connect(t, "C"), "nobody")
		start := time.Now()
		_, err := req.Request(ctxT(t), "nobody", 1)
		if !errors.Is(err, netcluster.ErrNoResponders) {
			t.Fatalf("Request = %v, want ErrNoResponders", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("ErrNoResponders after %v", d)
		}
		// An answer is not a request.
		m, _ := req.Request(ctxT(t), "nobody", 1)
		if m != nil {
			t.Fatal("a reply from no one")
		}
	})
}

func TestRequestThroughPropagation(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		req := e.connect(t, "A")
		b := e.connect(t, "B", netcluster.WithAgentID("b-worker"))
		answer(t, b, "price", func(m *netcluster.Message) any { return m.Channel + "→" + "B" })
		got, err := req.Request(ctxT(t), "price", nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := decode[string](t, got); s != "A→B" || got.Channel != "B" || got.Agent != "b-worker" {
			t.Fatalf("reply %q from %s/%s", s, got.Channel, got.Agent)
		}
		// B does not propagate to A: a request on B does not reach A.
		answer(t, e.connect(t, "A"), "back", func(*netcluster.Message) any { return 1 })
		if _, err := b.Request(ctxT(t), "back", nil); !errors.Is(err, netcluster.ErrNoResponders) {
			t.Fatalf("request on B = %v, want ErrNoResponders", err)
		}
	})
}

func TestRequestOwnListener(t *testing.T) {
	callEnvs(t, func(t *testing.T, e *callEnv) {
		a := e.connect(t, "A")
		answer(t, a, "self", func(m *netcluster.Message) any { return m.Local })
		got, err := a.Request(ctxT(t), "self", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !decode[bool](t, got) || !got.Local {
			t.Fatalf("reply %s local %v, want an answer in memory", got.Data, got.Local)
		}
	})
}

func TestReplyErrors(t *testing.T) {
	_, dir := startServer(t, busConfig(t, callTopology))
	a := connect(t, dir, "A")
	b := connect(t, dir, "A")
	r := listen(t, b, "ev")
	if err := a.Emit(ctxT(t), "ev", 1); err != nil {
		t.Fatal(err)
	}
	m := r.waitN(t, 1)[0]
	if m.IsRequest() {
		t.Fatal("an event is a request")
	}
	if err := m.Reply(ctxT(t), 1); !errors.Is(err, netcluster.ErrNotRequest) {
		t.Fatalf("Reply to an event = %v, want ErrNotRequest", err)
	}
	if _, err := a.Request(ctxT(t), "", 1); !errors.Is(err, netcluster.ErrInvalidEvent) {
		t.Fatalf("Request with no event = %v", err)
	}
	if _, err := a.Request(ctxT(t), "x", func() {}); err == nil || !strings.Contains(err.Error(), `request "x"`) {
		t.Fatalf("Request of a func = %v", err)
	}
	a.Close(ctxT(t))
	if _, err := a.Request(ctxT(t), "x", 1); !errors.Is(err, netcluster.ErrClosed) {
		t.Fatalf("Request after Close = %v, want ErrClosed", err)
	}
}

// v1Server is a server that speaks only protocol version 1, as servers
// before request/reply did: it refuses Hello version 2 with Error 4.
type v1Server struct {
	mu     sync.Mutex
	hellos []byte // the version of each Hello
	frames []byte // the types of the frames after Welcome
	wg     sync.WaitGroup
}

func (s *v1Server) dial(_ context.Context, _ string) (net.Conn, error) {
	c, srv := net.Pipe()
	s.wg.Go(func() {
		defer srv.Close()
		br := bufio.NewReader(srv)
		if _, err := br.Discard(len(wire.Preamble)); err != nil {
			return
		}
		rd := wire.NewReader(br, wire.DefaultMaxFrame)
		f, err := rd.Next()
		if err != nil {
			return
		}
		h, _ := wire.ParseHello(f.Payload)
		s.mu.Lock()
		s.hellos = append(s.hellos, h.Version)
		s.mu.Unlock()
		if h.Version != wire.Version {
			srv.Write(wire.AppendError(nil, wire.Error{Code: wire.CodeVersion, Text: "protocol version 2 is not supported; this server speaks 1"}))
			return
		}
		srv.Write(wire.AppendWelcome(nil, wire.Welcome{Version: wire.Version, MaxFrame: wire.DefaultMaxFrame, ServerID: "old"}))
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.frames = append(s.frames, f.Type)
			s.mu.Unlock()
			if f.Type == wire.TypePing {
				tok, _ := wire.ParseU64(f.Payload)
				srv.Write(wire.AppendU64(nil, wire.TypePong, tok))
			}
		}
	})
	return c, nil
}

// TestOldServer: against a server that speaks only version 1, the agent
// connects with version 1; events work, requests and queue listeners say
// they are not supported.
func TestOldServer(t *testing.T) {
	s := &v1Server{}
	a, err := netcluster.Connect(ctxT(t), "A", netcluster.WithDialer(s.dial))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Emit(ctxT(t), "ev", 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Request(ctxT(t), "ask", 1); !errors.Is(err, netcluster.ErrUnsupported) || !strings.Contains(err.Error(), "protocol version 1") {
		t.Errorf("Request = %v, want ErrUnsupported", err)
	}
	if _, err := a.OnQueue("job", "g", func(*netcluster.Message) {}); !errors.Is(err, netcluster.ErrUnsupported) {
		t.Errorf("OnQueue = %v, want ErrUnsupported", err)
	}
	a.Close(ctxT(t))
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(s.hellos) != "\x04\x01" {
		t.Errorf("hello versions %v, want 4 then 1", s.hellos)
	}
	if string(s.frames) != string([]byte{wire.TypeMsg, wire.TypePing}) {
		t.Errorf("frames after welcome %v, want msg, ping", s.frames)
	}
}
