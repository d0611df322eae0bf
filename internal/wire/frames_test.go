package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// frameCase is one frame for the table-driven tests: how to append it and
// the fields parse must return for it.
type frameCase struct {
	name   string
	typ    byte
	append func(dst []byte) []byte
	want   any
	// fixed is true when the payload has no open-ended tail (Msg data,
	// Request body): then every proper prefix of the payload is truncated
	// and every extension has trailing bytes.
	fixed bool
}

func frameCases() []frameCase {
	name255 := strings.Repeat("n", wire.MaxNameLen)
	event64k := strings.Repeat("e", wire.MaxEventLen)
	big := bytes.Repeat([]byte{0xa5}, 100_000)
	msg := func(m wire.Msg) func([]byte) []byte {
		return func(dst []byte) []byte { return wire.AppendMsg(dst, &m) }
	}
	return []frameCase{
		{"hello", wire.TypeHello, func(d []byte) []byte {
			return wire.AppendHello(d, wire.Hello{Version: 1, PID: 77, AgentID: "agent-1", Channel: "A"})
		}, wire.Hello{Version: 1, PID: 77, AgentID: "agent-1", Channel: "A"}, true},
		{"hello zero", wire.TypeHello, func(d []byte) []byte { return wire.AppendHello(d, wire.Hello{}) }, wire.Hello{}, true},
		{"hello longest names", wire.TypeHello, func(d []byte) []byte {
			return wire.AppendHello(d, wire.Hello{Version: 255, PID: 1<<32 - 1, AgentID: name255, Channel: name255})
		}, wire.Hello{Version: 255, PID: 1<<32 - 1, AgentID: name255, Channel: name255}, true},
		{"welcome", wire.TypeWelcome, func(d []byte) []byte {
			return wire.AppendWelcome(d, wire.Welcome{Version: 1, MaxFrame: wire.DefaultMaxFrame, ServerID: "srv"})
		}, wire.Welcome{Version: 1, MaxFrame: wire.DefaultMaxFrame, ServerID: "srv"}, true},
		{"welcome longest id", wire.TypeWelcome, func(d []byte) []byte {
			return wire.AppendWelcome(d, wire.Welcome{Version: 1, MaxFrame: 1<<32 - 1, ServerID: name255})
		}, wire.Welcome{Version: 1, MaxFrame: 1<<32 - 1, ServerID: name255}, true},
		{"listen", wire.TypeListen, func(d []byte) []byte { return wire.AppendListen(d, wire.TypeListen, "a|b") }, "a|b", true},
		{"listen empty", wire.TypeListen, func(d []byte) []byte { return wire.AppendListen(d, wire.TypeListen, "") }, "", true},
		{"listen longest", wire.TypeListen, func(d []byte) []byte { return wire.AppendListen(d, wire.TypeListen, event64k) }, event64k, true},
		{"unlisten", wire.TypeUnlisten, func(d []byte) []byte { return wire.AppendListen(d, wire.TypeUnlisten, "log\\..*") }, "log\\..*", true},
		{"msg json", wire.TypeMsg, msg(wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "a1", Event: "log", Data: []byte(`{"x":1}`)}),
			wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "a1", Event: "log", Data: []byte(`{"x":1}`)}, false},
		{"msg from network", wire.TypeMsg, msg(wire.Msg{Channel: "B", Agent: "a2", Node: "node-b", Event: "e", Data: []byte{0, 1, 2}}),
			wire.Msg{Channel: "B", Agent: "a2", Node: "node-b", Event: "e", Data: []byte{0, 1, 2}}, false},
		{"msg empty", wire.TypeMsg, msg(wire.Msg{}), wire.Msg{}, false},
		{"msg longest fields, 100 kB data", wire.TypeMsg,
			msg(wire.Msg{Flags: 0xff, Channel: name255, Agent: name255, Node: name255, Event: event64k, Data: big}),
			wire.Msg{Flags: 0xff, Channel: name255, Agent: name255, Node: name255, Event: event64k, Data: big}, false},
		{"error", wire.TypeError, func(d []byte) []byte { return wire.AppendError(d, wire.Error{Code: wire.CodeOrigin, Text: "no"}) },
			wire.Error{Code: wire.CodeOrigin, Text: "no"}, true},
		{"error empty", wire.TypeError, func(d []byte) []byte { return wire.AppendError(d, wire.Error{}) }, wire.Error{}, true},
		{"error text cut at 65535 bytes", wire.TypeError, func(d []byte) []byte {
			return wire.AppendError(d, wire.Error{Code: 1 << 15, Text: event64k + "tail"})
		}, wire.Error{Code: 1 << 15, Text: event64k}, true},
		{"ping", wire.TypePing, func(d []byte) []byte { return wire.AppendU64(d, wire.TypePing, 7) }, uint64(7), true},
		{"pong", wire.TypePong, func(d []byte) []byte { return wire.AppendU64(d, wire.TypePong, 1<<63) }, uint64(1 << 63), true},
		{"dropped", wire.TypeDropped, func(d []byte) []byte { return wire.AppendU64(d, wire.TypeDropped, 0) }, uint64(0), true},
		{"request", wire.TypeRequest, func(d []byte) []byte {
			return wire.AppendRequest(d, wire.TypeRequest, wire.Request{ID: 9, Body: []byte(`{"op":"x"}`)})
		}, wire.Request{ID: 9, Body: []byte(`{"op":"x"}`)}, false},
		{"reply empty body", wire.TypeReply, func(d []byte) []byte {
			return wire.AppendRequest(d, wire.TypeReply, wire.Request{ID: 1<<64 - 1})
		}, wire.Request{ID: 1<<64 - 1}, false},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frame := tc.append(nil)
			if n := int(frame[0])<<24 | int(frame[1])<<16 | int(frame[2])<<8 | int(frame[3]); n != len(frame)-4 {
				t.Fatalf("length field %d, want %d", n, len(frame)-4)
			}
			if frame[4] != tc.typ {
				t.Fatalf("type byte %d, want %d", frame[4], tc.typ)
			}
			got, err := parse(tc.typ, frame[wire.HeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			switch w := want.(type) {
			case wire.Msg:
				want = normMsg(w)
			case wire.Request:
				want = normRequest(w)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %.200v\nwant %.200v", got, want)
			}
			// Appending to a buffer keeps what is there.
			if both := tc.append([]byte("xyz")); !bytes.Equal(both, append([]byte("xyz"), frame...)) {
				t.Fatal("appending after a prefix changed the frame or the prefix")
			}
		})
	}
}

// TestParseTruncated cuts every payload at every length: the decoders must
// report ErrTruncated and never panic. Frames with an open-ended tail
// (Msg data, Request body) parse once their fixed part is complete.
func TestParseTruncated(t *testing.T) {
	t.Parallel()
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.append(nil)[wire.HeaderLen:]
			tail := 0
			switch w := tc.want.(type) {
			case wire.Msg:
				tail = len(w.Data)
			case wire.Request:
				tail = len(w.Body)
			}
			fixedLen := len(p) - tail
			step := 1
			if len(p) > 5000 {
				step = 97 // the long cases: every length near the edges, a sample between
			}
			for n := 0; n < len(p); n++ {
				if step > 1 && n > 600 && n < len(p)-600 && n%step != 0 {
					continue
				}
				_, err := parse(tc.typ, p[:n:n])
				if n < fixedLen {
					if !isTruncated(err) {
						t.Fatalf("payload cut to %d of %d bytes: err = %v, want ErrTruncated", n, len(p), err)
					}
				} else if err != nil {
					t.Fatalf("payload cut to %d of %d bytes (fixed part %d): %v", n, len(p), fixedLen, err)
				}
			}
		})
	}
}

func TestParseTrailing(t *testing.T) {
	t.Parallel()
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.append(nil)[wire.HeaderLen:]
			_, err := parse(tc.typ, append(bytes.Clone(p), 0, 1))
			if tc.fixed {
				if !errors.Is(err, wire.ErrTrailing) {
					t.Fatalf("2 extra bytes: err = %v, want ErrTrailing", err)
				}
				if !strings.Contains(err.Error(), "2 bytes") {
					t.Errorf("error %q does not say how many bytes are left over", err)
				}
			} else if err != nil {
				t.Fatalf("extra bytes are part of the data: %v", err)
			}
		})
	}
}

// TestParseErrorsName checks that a decoder error names the frame and the
// field, for the Error frame the server sends.
func TestParseErrorsName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  byte
		p    []byte
		want string
	}{
		{"hello pid", wire.TypeHello, []byte{1, 0, 0}, "hello: wire: truncated frame: pid"},
		{"hello agent id", wire.TypeHello, []byte{1, 0, 0, 0, 1, 5, 'a'}, "hello: wire: truncated frame: agent id"},
		{"hello channel", wire.TypeHello, []byte{1, 0, 0, 0, 1, 0}, "hello: wire: truncated frame: channel"},
		{"welcome", wire.TypeWelcome, nil, "welcome: wire: truncated frame: version"},
		{"listen", wire.TypeListen, []byte{0, 3, 'a'}, "listen: wire: truncated frame: pattern"},
		{"msg event", wire.TypeMsg, []byte{0, 0, 0, 0, 0}, "msg: wire: truncated frame: event"},
		{"error text", wire.TypeError, []byte{0, 1, 0, 9}, "error: wire: truncated frame: text"},
		{"ping", wire.TypePing, []byte{0}, "ping, pong or dropped: wire: truncated frame: value"},
		{"request", wire.TypeRequest, []byte{0}, "request: wire: truncated frame: id"},
		{"trailing", wire.TypePing, make([]byte, 9), "ping, pong or dropped: wire: trailing bytes after frame payload: 1 bytes after ping, pong or dropped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(tt.typ, tt.p)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestMsgViewAliases checks that ParseMsg copies nothing and Msg copies
// everything.
func TestMsgViewAliases(t *testing.T) {
	t.Parallel()
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a", Node: "n", Event: "e", Data: []byte("data")})
	p := frame[wire.HeaderLen:]
	v, err := wire.ParseMsg(p)
	if err != nil {
		t.Fatal(err)
	}
	m := v.Msg()
	p[len(p)-1] = 'X' // last byte of data
	if string(v.Data) != "datX" {
		t.Errorf("view data = %q: the view does not alias the frame", v.Data)
	}
	if string(m.Data) != "data" {
		t.Errorf("Msg data = %q: Msg does not own its bytes", m.Data)
	}
	// Appending to a view's field must not overwrite the frame: the
	// slices are capped.
	_ = append(v.Channel, 'Z')
	if frame[wire.HeaderLen+2] != 'A' || frame[wire.HeaderLen+3] != 1 {
		t.Error("appending to MsgView.Channel overwrote the frame")
	}
}

func TestMsgSize(t *testing.T) {
	t.Parallel()
	for _, m := range []wire.Msg{
		{},
		{Channel: "A", Agent: "agent", Node: "node", Event: "event", Data: make([]byte, 128)},
	} {
		if got, want := wire.MsgSize(&m), len(wire.AppendMsg(nil, &m)); got != want {
			t.Errorf("MsgSize = %d, AppendMsg wrote %d", got, want)
		}
	}
	if wire.MsgOverhead != 11 {
		t.Errorf("MsgOverhead = %d, want 11", wire.MsgOverhead)
	}
}

// TestAppendPanicsOnOverlongField documents the Append functions' contract:
// callers validate lengths first, and a name over 255 bytes or an event
// over 65535 bytes is a programming error.
func TestAppendPanicsOnOverlongField(t *testing.T) {
	t.Parallel()
	long8 := strings.Repeat("x", wire.MaxNameLen+1)
	long16 := strings.Repeat("x", wire.MaxEventLen+1)
	tests := []struct {
		name string
		f    func()
	}{
		{"hello agent id", func() { wire.AppendHello(nil, wire.Hello{AgentID: long8}) }},
		{"hello channel", func() { wire.AppendHello(nil, wire.Hello{Channel: long8}) }},
		{"welcome server id", func() { wire.AppendWelcome(nil, wire.Welcome{ServerID: long8}) }},
		{"listen pattern", func() { wire.AppendListen(nil, wire.TypeListen, long16) }},
		{"msg channel", func() { wire.AppendMsg(nil, &wire.Msg{Channel: long8}) }},
		{"msg agent", func() { wire.AppendMsg(nil, &wire.Msg{Agent: long8}) }},
		{"msg node", func() { wire.AppendMsg(nil, &wire.Msg{Node: long8}) }},
		{"msg event", func() { wire.AppendMsg(nil, &wire.Msg{Event: long16}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}

// TestWireNumbers pins every number that is on the wire. These lists are
// ONLY APPEND: a failure here means a released number changed.
func TestWireNumbers(t *testing.T) {
	t.Parallel()
	types := []struct {
		got  byte
		want byte
		name string
	}{
		{wire.TypeHello, 1, "hello"},
		{wire.TypeWelcome, 2, "welcome"},
		{wire.TypeListen, 3, "listen"},
		{wire.TypeUnlisten, 4, "unlisten"},
		{wire.TypeMsg, 5, "msg"},
		{wire.TypeError, 6, "error"},
		{wire.TypePing, 7, "ping"},
		{wire.TypePong, 8, "pong"},
		{wire.TypeDropped, 9, "dropped"},
		{wire.TypeRequest, 10, "request"},
		{wire.TypeReply, 11, "reply"},
	}
	for _, tt := range types {
		if tt.got != tt.want || wire.TypeName(tt.got) != tt.name {
			t.Errorf("frame type %s = %d (%q), want %d", tt.name, tt.got, wire.TypeName(tt.got), tt.want)
		}
	}
	if got := wire.TypeName(0); got != "type 0" {
		t.Errorf("TypeName(0) = %q", got)
	}
	if got := wire.TypeName(200); got != "type 200" {
		t.Errorf("TypeName(200) = %q", got)
	}
	codes := []struct {
		got, want uint16
	}{
		{wire.CodeMalformed, 1}, {wire.CodeTooLarge, 2}, {wire.CodeProtocol, 3}, {wire.CodeVersion, 4},
		{wire.CodeBadHello, 5}, {wire.CodeBadPattern, 6}, {wire.CodeOrigin, 7}, {wire.CodeSlowConsumer, 8},
		{wire.CodeShutdown, 9}, {wire.CodeChannelGone, 10}, {wire.CodeForbidden, 11}, {wire.CodeBadRequest, 12},
	}
	for _, c := range codes {
		if c.got != c.want {
			t.Errorf("error code %d, want %d", c.got, c.want)
		}
	}
	if wire.FlagJSON != 1 {
		t.Errorf("FlagJSON = %d, want 1", wire.FlagJSON)
	}
	if wire.Preamble != "NCW\x01" || wire.Version != 1 || wire.HeaderLen != 5 || wire.DefaultMaxFrame != 16<<20 {
		t.Errorf("preamble %q, version %d, header %d, max frame %d", wire.Preamble, wire.Version, wire.HeaderLen, wire.DefaultMaxFrame)
	}
	if wire.MaxNameLen != 255 || wire.MaxEventLen != 65535 || wire.MaxPatternLen != 65535 {
		t.Errorf("limits %d %d %d", wire.MaxNameLen, wire.MaxEventLen, wire.MaxPatternLen)
	}
}

func TestIsLegacyStart(t *testing.T) {
	t.Parallel()
	for b := 0; b < 256; b++ {
		want := strings.IndexByte("{ \t\r\n", byte(b)) >= 0
		if got := wire.IsLegacyStart(byte(b)); got != want {
			t.Errorf("IsLegacyStart(%q) = %v, want %v", byte(b), got, want)
		}
	}
	if wire.IsLegacyStart(wire.Preamble[0]) {
		t.Error("the preamble's first byte opens a legacy connection")
	}
}

func TestErrorType(t *testing.T) {
	t.Parallel()
	var err error = &wire.Error{Code: wire.CodeOrigin, Text: "bad origin"}
	if err.Error() != "bad origin" {
		t.Errorf("Error() = %q", err.Error())
	}
}
