package wire_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// The test vectors in testdata/vectors.json are the executable half of
// docs/PROTOCOL.md: TestVectors encodes every one from its fields and
// compares the bytes, then decodes the bytes back to the fields. The
// fuzzers are seeded from the same file.

type vectorFile struct {
	Comment      string
	Frames       []frameVector
	LegacyParse  []legacyParseVector  `json:"legacy_parse"`
	LegacyRender []legacyRenderVector `json:"legacy_render"`
}

// frameVector is one native frame. Exactly one of the field groups is set,
// the one that matches Type.
type frameVector struct {
	Name        string
	Description string
	Type        string // as wire.TypeName spells it
	Hello       *wire.Hello
	Welcome     *wire.Welcome
	Pattern     *string        // listen, unlisten
	Msg         *msgFields     // msg
	Error       *wire.Error    // error
	Value       *uint64        // ping, pong, dropped
	Request     *requestFields // request, reply
	Hex         string         // the whole frame; whitespace only groups fields
}

type msgFields struct {
	Flags   byte
	Channel string
	Agent   string
	Node    string
	Event   string
	Data    string // data as text, or
	DataHex string // data as hex, for bytes that are not text
}

func (m *msgFields) data() []byte {
	if m.DataHex != "" {
		return unhex(m.DataHex)
	}
	return []byte(m.Data)
}

func (m *msgFields) msg() wire.Msg {
	return normMsg(wire.Msg{Flags: m.Flags, Channel: m.Channel, Agent: m.Agent, Node: m.Node, Event: m.Event, Data: m.data()})
}

func (m *msgFields) view() wire.MsgView {
	return wire.MsgView{Flags: m.Flags, Channel: []byte(m.Channel), Agent: []byte(m.Agent), Node: []byte(m.Node), Event: []byte(m.Event), Data: m.data()}
}

type requestFields struct {
	ID   uint64
	Body string
}

// legacyParseVector is one legacy message (without its NUL) and what
// ParseLegacy makes of it, or the error it reports.
type legacyParseVector struct {
	Name        string
	Description string
	Input       string
	Channel     string
	Event       string
	Data        string // the raw JSON of data, exactly as ParseLegacy returns it
	Error       string // a substring of the error; empty when parsing succeeds
}

// legacyRenderVector is a message and the legacy bytes AppendLegacy makes
// of it, NUL included.
type legacyRenderVector struct {
	Name        string
	Description string
	Msg         msgFields
	Output      string
}

func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var vf vectorFile
	if err := dec.Decode(&vf); err != nil {
		tb.Fatalf("testdata/vectors.json: %v", err)
	}
	if len(vf.Frames) == 0 || len(vf.LegacyParse) == 0 || len(vf.LegacyRender) == 0 {
		tb.Fatal("testdata/vectors.json: a section is empty")
	}
	return &vf
}

// unhex decodes hex that may contain whitespace between groups.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(fmt.Sprintf("bad hex %q in test data: %v", s, err))
	}
	return b
}

// typeByName maps a wire.TypeName back to its number.
func typeByName(tb testing.TB, name string) byte {
	tb.Helper()
	for t := 1; t < 256; t++ {
		if wire.TypeName(byte(t)) == name {
			return byte(t)
		}
	}
	tb.Fatalf("unknown frame type %q", name)
	return 0
}

// encode appends the vector's frame to dst with the matching Append function.
func (v *frameVector) encode(tb testing.TB, dst []byte) []byte {
	tb.Helper()
	typ := typeByName(tb, v.Type)
	set := 0
	for _, p := range []bool{v.Hello != nil, v.Welcome != nil, v.Pattern != nil, v.Msg != nil, v.Error != nil, v.Value != nil, v.Request != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		tb.Fatalf("vector %s: %d field groups set, want exactly 1", v.Name, set)
	}
	switch {
	case typ == wire.TypeHello && v.Hello != nil:
		return wire.AppendHello(dst, *v.Hello)
	case typ == wire.TypeWelcome && v.Welcome != nil:
		return wire.AppendWelcome(dst, *v.Welcome)
	case (typ == wire.TypeListen || typ == wire.TypeUnlisten) && v.Pattern != nil:
		return wire.AppendListen(dst, typ, *v.Pattern)
	case typ == wire.TypeMsg && v.Msg != nil:
		m := v.Msg.msg()
		return wire.AppendMsg(dst, &m)
	case typ == wire.TypeError && v.Error != nil:
		return wire.AppendError(dst, *v.Error)
	case (typ == wire.TypePing || typ == wire.TypePong || typ == wire.TypeDropped) && v.Value != nil:
		return wire.AppendU64(dst, typ, *v.Value)
	case (typ == wire.TypeRequest || typ == wire.TypeReply) && v.Request != nil:
		return wire.AppendRequest(dst, typ, wire.Request{ID: v.Request.ID, Body: []byte(v.Request.Body)})
	}
	tb.Fatalf("vector %s: fields do not match type %s", v.Name, v.Type)
	return nil
}

// fields returns the vector's fields in the form parse returns them.
func (v *frameVector) fields() any {
	switch {
	case v.Hello != nil:
		return *v.Hello
	case v.Welcome != nil:
		return *v.Welcome
	case v.Pattern != nil:
		return *v.Pattern
	case v.Msg != nil:
		return v.Msg.msg()
	case v.Error != nil:
		return *v.Error
	case v.Value != nil:
		return *v.Value
	case v.Request != nil:
		return normRequest(wire.Request{ID: v.Request.ID, Body: []byte(v.Request.Body)})
	}
	return nil
}

// parse decodes a payload of type typ with the matching Parse function.
// Byte slices in the result are copied and empty ones are nil, so results
// compare with reflect.DeepEqual.
func parse(typ byte, p []byte) (any, error) {
	switch typ {
	case wire.TypeHello:
		return wire.ParseHello(p)
	case wire.TypeWelcome:
		return wire.ParseWelcome(p)
	case wire.TypeListen, wire.TypeUnlisten:
		return wire.ParseListen(p)
	case wire.TypeMsg:
		v, err := wire.ParseMsg(p)
		return normMsg(v.Msg()), err
	case wire.TypeError:
		return wire.ParseError(p)
	case wire.TypePing, wire.TypePong, wire.TypeDropped:
		return wire.ParseU64(p)
	case wire.TypeRequest, wire.TypeReply:
		r, err := wire.ParseRequest(p)
		return normRequest(r), err
	}
	return nil, fmt.Errorf("no parser for %s", wire.TypeName(typ))
}

func normMsg(m wire.Msg) wire.Msg {
	if len(m.Data) == 0 {
		m.Data = nil
	}
	return m
}

func normRequest(r wire.Request) wire.Request {
	if len(r.Body) == 0 {
		r.Body = nil
	} else {
		r.Body = bytes.Clone(r.Body)
	}
	return r
}

func TestVectors(t *testing.T) {
	t.Parallel()
	vf := loadVectors(t)
	seen := map[string]bool{}
	for _, v := range vf.Frames {
		seen[v.Type] = true
		t.Run("frame/"+v.Name, func(t *testing.T) {
			t.Parallel()
			want := unhex(v.Hex)
			typ := typeByName(t, v.Type)

			// Fields → bytes.
			if got := v.encode(t, nil); !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			prefix := []byte("prefix")
			if got := v.encode(t, bytes.Clone(prefix)); !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("encode after a prefix:\n got %x\nwant %s%x", got, prefix, want)
			}
			if v.Msg != nil {
				m := v.Msg.msg()
				if n := wire.MsgSize(&m); n != len(want) {
					t.Errorf("MsgSize = %d, frame is %d bytes", n, len(want))
				}
			}

			// The header.
			if len(want) < wire.HeaderLen {
				t.Fatalf("frame is %d bytes, shorter than a header", len(want))
			}
			if n := int(want[0])<<24 | int(want[1])<<16 | int(want[2])<<8 | int(want[3]); n != len(want)-4 {
				t.Errorf("length field = %d, want %d", n, len(want)-4)
			}
			if want[4] != typ {
				t.Errorf("type byte = %d, want %d (%s)", want[4], typ, v.Type)
			}

			// Bytes → fields.
			got, err := parse(typ, want[wire.HeaderLen:])
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if w := v.fields(); !reflect.DeepEqual(got, w) {
				t.Fatalf("parse:\n got %#v\nwant %#v", got, w)
			}

			// The Reader returns the frame as it is.
			rd := wire.NewReader(bufio.NewReader(bytes.NewReader(want)), wire.DefaultMaxFrame)
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("Reader.Next: %v", err)
			}
			if f.Type != typ || !bytes.Equal(f.Raw, want) || !bytes.Equal(f.Payload, want[wire.HeaderLen:]) {
				t.Fatalf("Reader.Next = %d %x %x, want %d %x", f.Type, f.Payload, f.Raw, typ, want)
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("Reader.Next after the frame: %v, want io.EOF", err)
			}
		})
	}
	for _, typ := range []byte{wire.TypeHello, wire.TypeWelcome, wire.TypeListen, wire.TypeUnlisten, wire.TypeMsg, wire.TypeError,
		wire.TypePing, wire.TypePong, wire.TypeDropped, wire.TypeRequest, wire.TypeReply} {
		if !seen[wire.TypeName(typ)] {
			t.Errorf("no vector for frame type %s", wire.TypeName(typ))
		}
	}

	for _, v := range vf.LegacyParse {
		t.Run("legacy-parse/"+v.Name, func(t *testing.T) {
			t.Parallel()
			env, err := wire.ParseLegacy([]byte(v.Input))
			if v.Error != "" {
				if err == nil || !strings.Contains(err.Error(), v.Error) {
					t.Fatalf("ParseLegacy(%q) error = %v, want one containing %q", v.Input, err, v.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLegacy(%q): %v", v.Input, err)
			}
			if env.Channel != v.Channel || env.Event != v.Event || string(env.Data) != v.Data {
				t.Fatalf("ParseLegacy(%q) = %q %q %s, want %q %q %s", v.Input, env.Channel, env.Event, env.Data, v.Channel, v.Event, v.Data)
			}
			// The same message read off a stream.
			br := bufio.NewReaderSize(strings.NewReader(v.Input+"\x00"), 16)
			var scratch []byte
			b, err := wire.ReadLegacy(br, wire.DefaultMaxFrame, &scratch)
			if err != nil || string(b) != v.Input {
				t.Fatalf("ReadLegacy = %q, %v; want %q", b, err, v.Input)
			}
		})
	}

	for _, v := range vf.LegacyRender {
		t.Run("legacy-render/"+v.Name, func(t *testing.T) {
			t.Parallel()
			mv := v.Msg.view()
			if got := wire.AppendLegacy(nil, &mv); string(got) != v.Output {
				t.Fatalf("AppendLegacy:\n got %q\nwant %q", got, v.Output)
			}
			prefix := []byte("prefix")
			if got := wire.AppendLegacy(bytes.Clone(prefix), &mv); string(got) != string(prefix)+v.Output {
				t.Fatalf("AppendLegacy after a prefix: got %q", got)
			}
			// What we render, we (and the original) can read back.
			env, err := wire.ParseLegacy([]byte(strings.TrimSuffix(v.Output, "\x00")))
			if err != nil {
				t.Fatalf("ParseLegacy of the rendering: %v", err)
			}
			if env.Channel != v.Msg.Channel || env.Event != v.Msg.Event {
				t.Fatalf("ParseLegacy of the rendering = %q %q, want %q %q", env.Channel, env.Event, v.Msg.Channel, v.Msg.Event)
			}
		})
	}
}

// isTruncated reports whether err says the input was cut short.
func isTruncated(err error) bool { return errors.Is(err, wire.ErrTruncated) }

// TestProtocolDocExamples checks that the hex dumps in docs/PROTOCOL.md are
// the bytes of the vectors they claim to show.
func TestProtocolDocExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	// Collect hexdump blocks: lines "00000010  67 65 … |ascii|".
	var blocks [][]byte
	var cur []byte
	for _, line := range strings.Split(string(doc), "\n") {
		off, rest, ok := strings.Cut(line, "  ")
		hexPart, _, bar := strings.Cut(rest, "  |")
		if !ok || !bar || len(off) != 8 || strings.Trim(off, "0123456789abcdef") != "" {
			if cur != nil {
				blocks = append(blocks, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, unhex(hexPart)...)
	}
	vf := loadVectors(t)
	frame := func(name string) []byte {
		for _, v := range vf.Frames {
			if v.Name == name {
				return unhex(v.Hex)
			}
		}
		t.Fatalf("no vector %q", name)
		return nil
	}
	render := func(name string) []byte {
		for _, v := range vf.LegacyRender {
			if v.Name == name {
				return []byte(v.Output)
			}
		}
		t.Fatalf("no vector %q", name)
		return nil
	}
	for _, want := range []struct {
		name string
		b    []byte
	}{
		{"preamble and hello", append([]byte(wire.Preamble), frame("hello")...)},
		{"welcome", frame("welcome")},
		{"msg-json", frame("msg-json")},
		{"legacy json-data", render("json-data")},
	} {
		found := false
		for _, b := range blocks {
			found = found || bytes.Equal(b, want.b)
		}
		if !found {
			t.Errorf("docs/PROTOCOL.md has no hex dump of %s (% x)", want.name, want.b)
		}
	}
}
