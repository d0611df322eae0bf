package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// The helpers of the control tests are prefixed ctl: other tests of this
// package are written alongside.

// ctlServer starts a server on the config src (JWCC; "" for the default)
// in a new socket directory and closes it at the end of the test.
func ctlServer(t testing.TB, src string) (*Server, string) {
	t.Helper()
	bus := config.Default()
	if src != "" {
		var err error
		if bus, err = config.Parse([]byte(src), t.Name()+".jsonc"); err != nil {
			t.Fatal(err)
		}
	}
	dir := testutil.ShortDir(t)
	bus.SocketDir = dir
	s, err := New(Config{Bus: bus, Console: ctlDiscard{}, Metrics: ctlMetrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

type ctlDiscard struct{}

func (ctlDiscard) Write(p []byte) (int, error) { return len(p), nil }

func ctlCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ctlAgent connects an agent and closes it at the end of the test.
func ctlAgent(t testing.TB, dir, channel string, opts ...netcluster.Option) *netcluster.Agent {
	t.Helper()
	opts = append([]netcluster.Option{
		netcluster.WithSocketDir(dir),
		netcluster.WithReconnectWait(5*time.Millisecond, 50*time.Millisecond),
	}, opts...)
	a, err := netcluster.Connect(ctlCtx(t), channel, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// ctlControl connects a control client and closes it at the end of the
// test.
func ctlControl(t testing.TB, dir string) *control.Client {
	t.Helper()
	c, err := control.Dial(ctlCtx(t), transport.SocketPath(dir, control.Channel), &control.Options{Dial: transport.Dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ctlAsk sends a control request and decodes the reply.
func ctlAsk(t testing.TB, c *control.Client, body string) control.Reply {
	t.Helper()
	b, err := c.RoundTrip(ctlCtx(t), []byte(body))
	if err != nil {
		t.Fatalf("request %s: %v", body, err)
	}
	var rep control.Reply
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("reply %s: %v", b, err)
	}
	if rep.OK == (rep.Error != "") || rep.OK != (rep.Result != nil) {
		t.Fatalf("reply %s: want ok with a result or an error, not both", b)
	}
	return rep
}

func ctlWriteFile(t testing.TB, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const ctlSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes

func TestControlCommands(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{
		"keys": [{"id": 1, "secret": "`+ctlSecret+`"}],
		"channels": {"A": {"propagatetochannels": "B"}, "B": {}},
	}`)
	a := ctlAgent(t, dir, "A", netcluster.WithAgentID("agent-a"))
	if _, err := a.On("log|audit", func(*netcluster.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	ctl := ctlControl(t, dir)
	bad := ctlWriteFile(t, testutil.ShortDir(t), "bad.jsonc", "{\n  \"channels\": {\n    \"A\": {\"propagatetochanels\": true},\n  },\n}\n")

	for _, tc := range []struct {
		name, body string
		want       []string // substrings of the result
		notWant    []string
		err        string // substring of the error; "" for success
	}{
		{name: "showconfig", body: `{"cmd":"showconfig"}`,
			want:    []string{`"channels":{"A":{"propagatetochannels":"B"`, `"secret":"REDACTED"`, `"socketdir":"` + dir + `"`, `"multicastloop":true,"netoffload":true`},
			notWant: []string{ctlSecret}},
		{name: "channels", body: `{"cmd":"channels"}`, want: []string{`["A","B","control"]`}},
		{name: "showchannel", body: `{"cmd":"showchannel","channel":"A"}`,
			want: []string{`"name":"A"`, `"id":"agent-a"`, `"patterns":["log|audit"]`, `"legacy":false`}},
		{name: "showchannel empty", body: `{"cmd":"showchannel","channel":"B"}`, want: []string{`"name":"B"`, `"agents":[]`}},
		{name: "showclient", body: `{"cmd":"showclient","channel":"A","id":"agent-a"}`,
			want: []string{`"id":"agent-a"`, `"channel":"A"`, `"buffer_cap":`, `"pid":` + itoa(os.Getpid())}},
		{name: "stats", body: `{"cmd":"stats"}`,
			want:    []string{`"node_id":"` + srv.NodeID() + `"`, `"name":"A","agents":1`, `"totals":{"name":"*","agents":2`, `"uptime_ns":`},
			notWant: []string{`"network"`}},

		{name: "unknown command", body: `{"cmd":"frobnicate"}`, err: `unknown command "frobnicate"; want one of channels, reloadconfig`},
		{name: "legacy typo is not a server command", body: `{"cmd":"reloaconfig","path":"/x"}`, err: `unknown command "reloaconfig"`},
		{name: "no cmd", body: `{}`, err: `missing "cmd"`},
		{name: "not JSON", body: `showconfig()`, err: `bad request: invalid character`},
		{name: "not an object", body: `["showconfig"]`, err: `bad request: json: cannot unmarshal array`},
		{name: "unknown field", body: `{"cmd":"showchannel","chanel":"A"}`, err: `bad request: json: unknown field "chanel"`},
		{name: "trailing data", body: `{"cmd":"stats"} {"cmd":"stats"}`, err: `bad request: data after the JSON object`},
		{name: "unexpected argument", body: `{"cmd":"showconfig","channel":"A"}`, err: `showconfig: unexpected field "channel"`},
		{name: "showchannel without channel", body: `{"cmd":"showchannel"}`, err: `showchannel: missing "channel"`},
		{name: "unknown channel", body: `{"cmd":"showchannel","channel":"Z"}`, err: `unknown channel "Z"; the channels are A, B, control`},
		{name: "showclient without id", body: `{"cmd":"showclient","channel":"A"}`, err: `showclient: missing "id"`},
		{name: "showclient unknown channel", body: `{"cmd":"showclient","channel":"Z","id":"agent-a"}`, err: `unknown channel "Z"`},
		{name: "showclient unknown agent", body: `{"cmd":"showclient","channel":"A","id":"nobody"}`, err: `no agent "nobody" on channel "A"`},
		{name: "showclient agent of another channel", body: `{"cmd":"showclient","channel":"B","id":"agent-a"}`, err: `no agent "agent-a" on channel "B"`},
		{name: "reload without path", body: `{"cmd":"reloadconfig"}`, err: `reloadconfig: missing "path"`},
		{name: "reload relative path", body: `{"cmd":"reloadconfig","path":"netcluster.json"}`, err: `path "netcluster.json" is not absolute`},
		{name: "reload missing file", body: `{"cmd":"reloadconfig","path":"/nonexistent/nc.json"}`, err: `config: open /nonexistent/nc.json: no such file or directory`},
		{name: "reload invalid file", body: `{"cmd":"reloadconfig","path":"` + bad + `"}`,
			err: bad + `:3:11: channels.A.propagatetochanels: unknown key (did you mean "propagatetochannels"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := ctlAsk(t, ctl, tc.body)
			if tc.err != "" {
				if rep.OK || !strings.Contains(rep.Error, tc.err) {
					t.Fatalf("reply %+v; want error containing %q", rep, tc.err)
				}
				return
			}
			if !rep.OK {
				t.Fatalf("error %q", rep.Error)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(rep.Result), w) {
					t.Errorf("result %s\nlacks %s", rep.Result, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(rep.Result), w) {
					t.Errorf("result %s\nhas %s", rep.Result, w)
				}
			}
		})
	}
	// None of the errors closed the connection or changed the config.
	if got := srv.Bus().ChannelNames(); strings.Join(got, ",") != "A,B,control" {
		t.Errorf("channels after the errors: %v", got)
	}
	if !ctl.Connected() {
		t.Error("control client disconnected after error replies")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestControlReload(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"channels": {"A": {}, "B": {}}}`)
	ctl := ctlControl(t, dir)
	gone := make(chan error, 1)
	b2, err := netcluster.Connect(ctlCtx(t), "B", netcluster.WithSocketDir(dir), netcluster.WithoutReconnect(),
		netcluster.WithStateHandler(func(s netcluster.State, err error) {
			if s == netcluster.Disconnected {
				gone <- err
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close(context.Background())

	// The file names no socketdir: the sockets stay where they are.
	path := ctlWriteFile(t, testutil.ShortDir(t), "nc.jsonc", `{"channels": {"A": {}, "C": {"propagatetochannels": "A"}}}`)
	rep := ctlAsk(t, ctl, `{"cmd":"reloadconfig","path":"`+path+`"}`)
	if !rep.OK {
		t.Fatal(rep.Error)
	}
	var res control.ReloadResult
	if err := json.Unmarshal(rep.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.Source != path || strings.Join(res.Added, ",") != "C" || strings.Join(res.Removed, ",") != "B" ||
		strings.Join(res.Channels, ",") != "A,C,control" {
		t.Errorf("reload result %+v", res)
	}
	select {
	case err := <-gone:
		var se *netcluster.ServerError
		if !errors.As(err, &se) || se.Code != wire.CodeChannelGone || !strings.Contains(se.Text, `channel "B" was removed`) {
			t.Errorf("agent of the removed channel closed with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent of the removed channel still connected")
	}
	if got := srv.Addrs()["C"]; got != transport.SocketPath(dir, "C") {
		t.Errorf("C listens at %q; want it in %s", got, dir)
	}
	ctlAgent(t, dir, "C") // the new channel accepts agents
	if !ctl.Connected() {
		t.Error("control client disconnected by the reload")
	}
}

func TestControlOff(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"startcontrol": false, "channels": {"A": {}}}`)
	rep := ctlAsk(t, ctlControl(t, dir), `{"cmd":"showconfig"}`)
	if rep.OK || !strings.Contains(rep.Error, "control is off") {
		t.Fatalf("reply %+v; want control is off", rep)
	}
	// The channel itself works.
	ctl := ctlAgent(t, dir, config.ControlChannel)
	got := make(chan string, 1)
	if _, err := ctl.On("ping", func(m *netcluster.Message) { got <- string(m.Data) }); err != nil {
		t.Fatal(err)
	}
	ctl.Flush(ctlCtx(t))
	other := ctlAgent(t, dir, config.ControlChannel)
	other.Emit(ctlCtx(t), "ping", 1)
	select {
	case d := <-got:
		if d != "1" {
			t.Errorf("got %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the control channel")
	}
}

// ctlRaw is a native connection driven frame by frame, to see every frame
// the server sends.
type ctlRaw struct {
	t  testing.TB
	nc net.Conn
	rd *wire.Reader
}

func ctlDialRaw(t testing.TB, dir, channel, id string) *ctlRaw {
	t.Helper()
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, channel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &ctlRaw{t: t, nc: nc, rd: wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	r.write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: id, Channel: channel})...))
	if f := r.next(); f.Type != wire.TypeWelcome {
		t.Fatalf("got %s; want welcome", wire.TypeName(f.Type))
	}
	return r
}

func (r *ctlRaw) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *ctlRaw) next() wire.Frame {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := r.rd.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// sync sends a ping and returns the frames that arrive before its pong.
func (r *ctlRaw) sync(tok uint64) []wire.Frame {
	r.t.Helper()
	r.write(wire.AppendU64(nil, wire.TypePing, tok))
	var got []wire.Frame
	for {
		f := r.next()
		if f.Type == wire.TypePong {
			if v, _ := wire.ParseU64(f.Payload); v == tok {
				return got
			}
		}
		f.Payload = append([]byte(nil), f.Payload...)
		got = append(got, f)
	}
}

func TestControlSecurity(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"channels": {"A": {"propagatetochannels": "control"}, "B": {}}}`)
	// A file that would remove B, were any event to act as a command.
	path := ctlWriteFile(t, testutil.ShortDir(t), "nc.jsonc", `{"channels": {"A": {}}}`)

	// observer is a control client that listens to everything and asks
	// nothing: it must see the events from A, and never a reply.
	observer := ctlDialRaw(t, dir, config.ControlChannel, "observer")
	observer.write(wire.AppendListen(nil, wire.TypeListen, ".*"))
	observer.sync(1)

	a := ctlAgent(t, dir, "A")
	req := `{"cmd":"reloadconfig","path":"` + path + `"}`
	events := []string{"reloadconfig", "nc-control-reloadconfig", "showconfig", "nc-control-showconfig"}
	for _, ev := range events {
		if err := a.EmitRaw(ctlCtx(t), ev, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}

	// Another control client asks, and gets its replies.
	asker := ctlControl(t, dir)
	for range 3 {
		if rep := ctlAsk(t, asker, `{"cmd":"stats"}`); !rep.OK {
			t.Fatal(rep.Error)
		}
	}
	var seen []string
	for _, f := range observer.sync(2) {
		switch f.Type {
		case wire.TypeMsg:
			v, err := wire.ParseMsg(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(v.Channel) != "A" || string(v.Data) != req {
				t.Errorf("observer got %q from %q: %s", v.Event, v.Channel, v.Data)
			}
			seen = append(seen, string(v.Event))
		default:
			t.Errorf("observer got a %s frame: %q", wire.TypeName(f.Type), f.Payload)
		}
	}
	if strings.Join(seen, " ") != strings.Join(events, " ") {
		t.Errorf("observer saw events %q; want %q, as ordinary events", seen, events)
	}
	if got := strings.Join(srv.Bus().ChannelNames(), ","); got != "A,B,control" {
		t.Errorf("an event acted as a command: channels now %s", got)
	}

	// A Request frame outside the control channel is refused and closes
	// that connection.
	rawA := ctlDialRaw(t, dir, "A", "raw-a")
	rawA.write(wire.AppendRequest(nil, wire.TypeRequest, wire.Request{ID: 1, Body: []byte(req)}))
	if f := rawA.next(); f.Type != wire.TypeError || !strings.Contains(string(f.Payload), "control requests are accepted only on the control channel") {
		t.Errorf("request on A answered with %s %q; want it refused", wire.TypeName(f.Type), f.Payload)
	}
	raw := ctlDialRaw(t, dir, "B", "raw-b")
	raw.write(wire.AppendRequest(nil, wire.TypeRequest, wire.Request{ID: 7, Body: []byte(req)}))
	f := raw.next()
	e, _ := wire.ParseError(f.Payload)
	if f.Type != wire.TypeError || e.Code != wire.CodeForbidden {
		t.Errorf("request on B answered with %s %+v; want error %d", wire.TypeName(f.Type), e, wire.CodeForbidden)
	}
	if got := strings.Join(srv.Bus().ChannelNames(), ","); got != "A,B,control" {
		t.Errorf("a request outside control acted: channels now %s", got)
	}
}

// TestControlHandlers: the server handles every command of the control
// table, and no other.
func TestControlHandlers(t *testing.T) {
	t.Parallel()
	names := control.Names()
	for _, n := range names {
		if controlHandlers[n] == nil {
			t.Errorf("command %s has no handler", n)
		}
	}
	if len(controlHandlers) != len(names) {
		t.Errorf("%d handlers for the %d commands %v", len(controlHandlers), len(names), names)
	}
}
