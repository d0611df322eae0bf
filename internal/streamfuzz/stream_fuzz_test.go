package streamfuzz_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
	"github.com/netcluster/netcluster/server"
)

// The end-to-end fuzzer of the socket stream: a random byte stream, made
// from native frames and legacy JSON mixed, is fed to a running server
// through its in-process Dial, beside a healthy sender and receiver on the
// same channel. Properties: the server never panics (a panic ends the
// process), the healthy pair still gets its message after every stream,
// and every Error frame the server answers with is clear (a known code, a
// short UTF-8 text).

// fuzzMaxFrame keeps what one stream can make the server allocate small.
const fuzzMaxFrame = 64 << 10

// streamSeeds returns the seed streams: valid native and legacy
// conversations, then the malformed and mixed ones that each decoder's
// tests know.
func streamSeeds() [][]byte {
	hello := func(ch, id string) []byte {
		return wire.AppendHello([]byte(wire.Preamble), wire.Hello{Version: wire.Version, PID: 7, AgentID: id, Channel: ch})
	}
	msg := func(dst []byte, ev, data string) []byte {
		return wire.AppendMsg(dst, &wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "fz", Event: ev, Data: []byte(data)})
	}
	native := hello("A", "fz")
	native = wire.AppendListen(native, wire.TypeListen, ".*")
	native = msg(native, "log", `{"x":1}`)
	native = msg(native, "probe", `"forged"`)
	native = wire.AppendU64(native, wire.TypePing, 42)
	native = wire.AppendListen(native, wire.TypeUnlisten, ".*")

	legacy := []byte(`{"channel":"A","broadcast":false,"event":"log","data":{"x":1}}` + "\x00" +
		` {"event":"probe","data":"forged"}` + "\x00" + `{"event":""}` + "\x00")
	deep := []byte(`{"event":"e","data":` + strings.Repeat("[", 10050) + "\x00")

	huge := append(hello("A", "big"), 0x7f, 0xff, 0xff, 0xff, wire.TypeMsg)
	badPattern := wire.AppendListen(hello("A", "pat"), wire.TypeListen, "("+strings.Repeat("a", 1000))
	wrongChannel := msg(hello("B", "fz"), "log", "1")
	badUTF8 := msg(hello("A", "u8"), "\xff\xfe", "\"\xff\"")

	// Version 4: the stream announced, watched streams asked about, numbered
	// messages (a resumed stream, held within the grace), a Stream again.
	hello4 := wire.AppendHello([]byte(wire.Preamble), wire.Hello{Version: wire.VersionGaps, PID: 7, AgentID: "fz", Channel: "A"})
	v4 := wire.AppendStream(bytes.Clone(hello4), 9, 3)
	v4 = wire.AppendListen(v4, wire.TypeListen, ".*")
	v4 = wire.AppendRefs(v4, wire.TypeWatch, []wire.StreamRef{{Channel: "A", Agent: "x", Stream: 1}, {Channel: "B", Agent: "fz", Stream: 9}, {Channel: "Z", Agent: "y", Stream: 2}})
	v4 = wire.AppendSeqMsg(v4, 9, 1, &wire.Msg{Channel: "A", Agent: "fz", Event: "e", Data: []byte("1")})
	v4 = wire.AppendSeqMsg(v4, 9, 2, &wire.Msg{Channel: "A", Agent: "fz", Event: "e", Data: []byte("2")})
	v4 = wire.AppendRefs(v4, wire.TypeWatch, nil)
	resumed := wire.AppendStream(bytes.Clone(hello4), 9, 7)
	resumed = wire.AppendSeqMsg(resumed, 9, 5, &wire.Msg{Channel: "A", Agent: "fz", Event: "e", Data: []byte("5")})
	return [][]byte{
		v4,
		resumed,
		native,
		legacy,
		append(bytes.Clone(native), legacy...), // native, then JSON
		append(bytes.Clone(legacy), native...), // JSON, then native
		deep,
		huge,
		badPattern,
		wrongChannel,
		badUTF8,
		native[:len(native)-3],        // cut in a frame
		[]byte(wire.Preamble),         // preamble alone
		[]byte("NCW\x09"),             // another version
		[]byte("\x00\x00\x00\x00"),    // neither wire
		[]byte("  \t\r\n{\"event\":"), // undecided, then cut
	}
}

func FuzzServerStream(f *testing.F) {
	for i, s := range streamSeeds() {
		f.Add(s, uint8(i*37))
	}
	bus := config.New()
	bus.MaxFrame = fuzzMaxFrame
	bus.OutBuffer = 256 << 10
	bus.Channels["A"] = &config.Channel{Propagate: config.PropagateAll()}
	bus.Channels["B"] = &config.Channel{}
	srv, err := server.New(server.Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	pair := newHealthyPair(f, srv)

	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		out := feedStream(t, srv, stream, int(chunk)%64+1)
		if len(stream) >= len(wire.Preamble) && string(stream[:len(wire.Preamble)]) == wire.Preamble {
			checkErrorFrames(t, out)
		}
		pair.check(t)
	})
}

// feedStream sends stream to a new connection on channel A, chunk bytes
// per write, half-closes it, and returns what the server sent back until
// it closed (at most 1 MiB; a listener may get messages meanwhile).
func feedStream(t *testing.T, srv *server.Server, stream []byte, chunk int) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := srv.Dial(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	var out []byte
	read := make(chan struct{})
	go func() {
		defer close(read)
		out, _ = io.ReadAll(io.LimitReader(nc, 1<<20))
	}()
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		if _, err := nc.Write(stream[:n]); err != nil {
			break // the server gave up on the stream: allowed
		}
		stream = stream[n:]
	}
	nc.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case <-read:
	case <-ctx.Done():
		t.Fatal("the server did not close a connection whose stream had ended")
	}
	return out
}

// checkErrorFrames checks each Error frame in a native reply.
func checkErrorFrames(t *testing.T, out []byte) {
	rd := wire.NewReader(bufio.NewReader(bytes.NewReader(out)), 2<<20)
	for {
		fr, err := rd.Next()
		if err != nil {
			return // the end, or cut by the 1 MiB limit
		}
		if fr.Type != wire.TypeError {
			continue
		}
		e, err := wire.ParseError(fr.Payload)
		switch {
		case err != nil:
			t.Fatalf("the server sent a malformed Error frame: %v", err)
		case e.Code == 0 || e.Code > wire.CodeBadRequest:
			t.Errorf("Error frame with unknown code %d: %q", e.Code, e.Text)
		case e.Text == "" || !utf8.ValidString(e.Text):
			t.Errorf("Error frame %d with an empty or non-UTF-8 text %q", e.Code, e.Text)
		case len(e.Text) > 1024:
			t.Errorf("Error frame %d text of %d bytes, want a short one: %.200q…", e.Code, len(e.Text), e.Text)
		}
	}
}

// healthyPair is a sender and a receiver on channel A that must keep
// their messages whatever the other connections send.
type healthyPair struct {
	send *netcluster.Agent
	seq  int
	mu   sync.Mutex
	got  map[int]bool
	note chan struct{}
}

func newHealthyPair(f *testing.F, srv *server.Server) *healthyPair {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := &healthyPair{got: map[int]bool{}, note: make(chan struct{}, 1)}
	connect := func(id string) *netcluster.Agent {
		a, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(srv.Dial), netcluster.WithAgentID(id))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { a.Close(context.Background()) })
		return a
	}
	p.send = connect("healthy-sender")
	recv := connect("healthy-receiver")
	if _, err := recv.On("probe", func(m *netcluster.Message) {
		if m.Agent != "healthy-sender" {
			return // a fuzzed stream may emit probes too
		}
		var n int
		if json.Unmarshal(m.Data, &n) != nil {
			return
		}
		p.mu.Lock()
		p.got[n] = true
		p.mu.Unlock()
		select {
		case p.note <- struct{}{}:
		default:
		}
	}); err != nil {
		f.Fatal(err)
	}
	if err := recv.Flush(ctx); err != nil {
		f.Fatal(err)
	}
	return p
}

// check sends the next probe and waits for it.
func (p *healthyPair) check(t *testing.T) {
	p.seq++
	n := p.seq
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.send.Emit(ctx, "probe", n); err != nil {
		t.Fatalf("healthy sender: %v", err)
	}
	for {
		p.mu.Lock()
		ok := p.got[n]
		delete(p.got, n)
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.note:
		case <-ctx.Done():
			t.Fatalf("healthy receiver did not get probe %s: %v", strconv.Itoa(n), errors.Unwrap(ctx.Err()))
		}
	}
}
