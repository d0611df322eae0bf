package wire_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/netcluster/netcluster/internal/wire"
)

// legacyMsg returns an envelope of exactly n bytes (n >= 32), without NUL.
func legacyMsg(n int, fill byte) []byte {
	head := `{"event":"e","data":"`
	tail := `"}`
	if n < len(head)+len(tail) {
		panic("legacyMsg: too short")
	}
	return fmt.Appendf(nil, "%s%s%s", head, bytes.Repeat([]byte{fill}, n-len(head)-len(tail)), tail)
}

// readLegacyAll reads NUL-terminated messages until an error.
func readLegacyAll(br *bufio.Reader, max int) ([][]byte, error) {
	var got [][]byte
	var scratch []byte
	for {
		b, err := wire.ReadLegacy(br, max, &scratch)
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(b))
	}
}

func TestReadLegacyStreams(t *testing.T) {
	t.Parallel()
	var msgs [][]byte
	for n := 32; n < 90; n++ { // lengths on both sides of every 16-byte boundary
		msgs = append(msgs, legacyMsg(n, 'a'+byte(n%26)))
	}
	msgs = append(msgs, []byte(`{"event":"é","data":"日本語 ✓"}`), []byte{}, []byte(`{}`))
	var stream []byte
	for _, m := range msgs {
		stream = append(append(stream, m...), 0)
	}
	for _, w := range []struct {
		name string
		f    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte a read", iotest.OneByteReader},
		{"half a read", iotest.HalfReader},
		{"EOF with data", iotest.DataErrReader},
	} {
		for _, size := range []int{16, 64, 4096} {
			t.Run(fmt.Sprintf("%s/buf%d", w.name, size), func(t *testing.T) {
				t.Parallel()
				br := bufio.NewReaderSize(w.f(bytes.NewReader(stream)), size)
				got, err := readLegacyAll(br, 1<<20)
				if err != io.EOF {
					t.Fatalf("after %d messages: %v, want io.EOF", len(got), err)
				}
				if len(got) != len(msgs) {
					t.Fatalf("read %d messages, want %d", len(got), len(msgs))
				}
				for i := range got {
					if !bytes.Equal(got[i], msgs[i]) {
						t.Fatalf("message %d:\n got %q\nwant %q", i, got[i], msgs[i])
					}
				}
			})
		}
	}
}

// TestReadLegacyLarge reads a 1 MiB message between two small ones: the
// original crashed on anything that crossed a 64 KiB read.
func TestReadLegacyLarge(t *testing.T) {
	t.Parallel()
	small := []byte(`{"event":"small"}`)
	big := legacyMsg(1<<20, 'x')
	stream := bytes.Join([][]byte{small, big, small, nil}, []byte{0})
	for _, size := range []int{16, 4096, 64 << 10} {
		t.Run(fmt.Sprintf("buf%d", size), func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReaderSize(bytes.NewReader(stream), size)
			got, err := readLegacyAll(br, 1<<20)
			if err != io.EOF {
				t.Fatalf("after %d messages: %v", len(got), err)
			}
			if len(got) != 3 || !bytes.Equal(got[0], small) || !bytes.Equal(got[1], big) || !bytes.Equal(got[2], small) {
				t.Fatalf("got %d messages, or wrong ones", len(got))
			}
			env, err := wire.ParseLegacy(got[1])
			if err != nil || len(env.Data) != 1<<20-len(`{"event":"e","data":}`) {
				t.Fatalf("ParseLegacy of 1 MiB: %v, data %d bytes", err, len(env.Data))
			}
		})
	}
}

func TestReadLegacyErrors(t *testing.T) {
	t.Parallel()
	nul := func(b []byte) []byte { return append(bytes.Clone(b), 0) }
	tests := []struct {
		name   string
		stream []byte
		max    int
		msgs   int // messages read before the error
		err    error
	}{
		{"nothing", nil, 100, 0, io.EOF},
		{"clean EOF", nul(legacyMsg(40, 'a')), 100, 1, io.EOF},
		{"exactly max", nul(legacyMsg(100, 'a')), 100, 1, io.EOF},
		{"max plus one", nul(legacyMsg(101, 'a')), 100, 0, wire.ErrLegacyTooLarge},
		{"no NUL for ever", bytes.Repeat([]byte("x"), 10_000), 100, 0, wire.ErrLegacyTooLarge},
		{"over max after a good one", append(nul(legacyMsg(50, 'a')), legacyMsg(300, 'b')...), 100, 1, wire.ErrLegacyTooLarge},
		{"cut short, inside the buffer", []byte(`{"event":`), 100, 0, io.ErrUnexpectedEOF},
		{"cut short, past the buffer", legacyMsg(60, 'a'), 100, 0, io.ErrUnexpectedEOF},
		{"cut short after a good one", append(nul(legacyMsg(40, 'a')), `{"ev`...), 100, 1, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReaderSize(bytes.NewReader(tt.stream), 16)
			got, err := readLegacyAll(br, tt.max)
			if len(got) != tt.msgs {
				t.Errorf("read %d messages, want %d", len(got), tt.msgs)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if errors.Is(err, wire.ErrLegacyTooLarge) && !strings.Contains(err.Error(), fmt.Sprint(tt.max)) {
				t.Errorf("err = %q does not name the limit", err)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReadLegacyBounded checks that a peer that never sends a NUL costs
// at most about max bytes before it is refused.
func TestReadLegacyBounded(t *testing.T) {
	t.Parallel()
	const max, bufSize = 1000, 64
	cr := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("y"), 1<<20))}
	var scratch []byte
	_, err := wire.ReadLegacy(bufio.NewReaderSize(cr, bufSize), max, &scratch)
	if !errors.Is(err, wire.ErrLegacyTooLarge) {
		t.Fatalf("err = %v, want ErrLegacyTooLarge", err)
	}
	if cr.n > max+2*bufSize {
		t.Fatalf("read %d bytes before refusing, limit %d", cr.n, max)
	}
}

func TestParseLegacyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `hello`, "legacy message: not valid JSON"},
		{"empty", ``, "legacy message: not valid JSON"},
		{"only spaces", `   `, "legacy message: not valid JSON"},
		{"truncated", `{"event":"a"`, "legacy message: not valid JSON"},
		{"two values", `{"event":"a"}{"event":"b"}`, "legacy message: not valid JSON"},
		{"trailing comma", `{"event":"a",}`, "legacy message: not valid JSON"},
		{"raw control character", "{\"event\":\"a\x01\"}", "legacy message: not valid JSON"},
		{"missing event", `{"channel":"A","data":1}`, `legacy message: "event" is missing or empty`},
		{"empty event", `{"event":""}`, `legacy message: "event" is missing or empty`},
		{"null event", `{"event":null}`, `legacy message: "event" is missing or empty`},
		{"null message", `null`, `legacy message: "event" is missing or empty`},
		{"event a number", `{"event":1}`, "legacy message: json: cannot unmarshal number"},
		{"event a bool", `{"event":true}`, "legacy message: json: cannot unmarshal bool"},
		{"event an array", `{"event":["a"]}`, "legacy message: json: cannot unmarshal array"},
		{"channel a number", `{"channel":1,"event":"a"}`, "legacy message: json: cannot unmarshal number"},
		{"an array", `[{"event":"a"}]`, "legacy message: json: cannot unmarshal array"},
		{"event too long", `{"event":"` + strings.Repeat("e", wire.MaxEventLen+1) + `"}`, "longer than 65535 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := wire.ParseLegacy([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseLegacy(%.40q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseLegacy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in             string
		channel, event, data string
	}{
		{"longest event", `{"event":"` + strings.Repeat("e", wire.MaxEventLen) + `"}`, "", strings.Repeat("e", wire.MaxEventLen), "null"},
		{"data is a string", `{"event":"e","data":"s"}`, "", "e", `"s"`},
		{"data is deep", `{"event":"e","data":{"a":[{"b":null}]}}`, "", "e", `{"a":[{"b":null}]}`},
		{"NUL escaped in event", `{"event":"a\u0000b"}`, "", "a\x00b", "null"},
		{"invalid UTF-8 in event becomes U+FFFD", "{\"event\":\"a\xffb\"}", "", "a\uFFFDb", "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := wire.ParseLegacy([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if env.Channel != tt.channel || env.Event != tt.event || string(env.Data) != tt.data {
				t.Fatalf("got %q %.20q %s, want %q %.20q %s", env.Channel, env.Event, env.Data, tt.channel, tt.event, tt.data)
			}
		})
	}
}

// TestParseLegacyDataOwned checks that Data does not alias the input,
// which aliases the bufio buffer in a server.
func TestParseLegacyDataOwned(t *testing.T) {
	t.Parallel()
	in := []byte(`{"event":"e","data":[1,2,3]}`)
	env, err := wire.ParseLegacy(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = ' '
	}
	if string(env.Data) != "[1,2,3]" {
		t.Fatalf("Data changed with the input: %q", env.Data)
	}
}

// TestAppendLegacyProperties renders awkward messages and checks what
// every legacy peer relies on: one NUL, at the end, after valid JSON.
func TestAppendLegacyProperties(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    wire.MsgView
		data any // the data a JSON decoder sees
	}{
		{"invalid UTF-8 in names", wire.MsgView{Channel: []byte("a\xff"), Event: []byte("\xfe\x00")}, ""},
		{"U+2028 in data", wire.MsgView{Event: []byte("e"), Data: []byte("a\u2028b")}, "a\u2028b"},
		{"JSON with whitespace", wire.MsgView{Flags: wire.FlagJSON, Event: []byte("e"), Data: []byte(" [1, 2]\n")}, []any{1.0, 2.0}},
		{"JSON flag, bytes", wire.MsgView{Flags: wire.FlagJSON, Event: []byte("e"), Data: []byte{0xff}}, "/w=="},
		{"every byte", wire.MsgView{Event: []byte("e"), Data: func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := wire.AppendLegacy(nil, &tt.v)
			if i := bytes.IndexByte(out, 0); i != len(out)-1 {
				t.Fatalf("NUL at %d of %d: %q", i, len(out), out)
			}
			var m map[string]any
			if err := json.Unmarshal(out[:len(out)-1], &m); err != nil {
				t.Fatalf("not JSON: %v: %q", err, out)
			}
			if tt.data != nil {
				if got, want := fmt.Sprint(m["data"]), fmt.Sprint(tt.data); got != want {
					t.Fatalf("data = %s, want %s", got, want)
				}
			}
			if m["broadcast"] != false {
				t.Errorf("broadcast = %v, want false", m["broadcast"])
			}
		})
	}
}

// The envelope's strings are written as encoding/json writes them (without
// HTML escaping), whether by the fast path for plain ASCII or not.
func TestAppendLegacyStringsAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain text 123", `quote " inside`, `back\slash`, "tab\there", "nl\n", "\x00\x1f\x7f",
		"<html>&", "é ü 日本", "\u2028\u2029", "bad \xff utf8", strings.Repeat("p", 128)} {
		got := wire.AppendLegacy(nil, &wire.MsgView{Channel: []byte("c"), Event: []byte(s), Data: []byte(s)})
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		want := strings.TrimSuffix(buf.String(), "\n")
		data := want
		if !utf8.ValidString(s) {
			data = `"` + base64.StdEncoding.EncodeToString([]byte(s)) + `"`
		}
		if w := `{"channel":"c","broadcast":false,"event":` + want + `,"data":` + data + "}\x00"; string(got) != w {
			t.Errorf("%q: got %s, want %s", s, got, w)
		}
	}
}
