package wire_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/netcluster/netcluster/internal/wire"
)

// The fuzzers are seeded from testdata/vectors.json and check properties,
// not fixed outputs.

const fuzzMax = 4096 // small, so the fuzzer cannot make us allocate much

// FuzzReader feeds a random stream to Reader.Next: it never panics, never
// returns a frame over the maximum, and every frame's Raw is exactly the
// next 4+length bytes of the stream.
func FuzzReader(f *testing.F) {
	vf := loadVectors(f)
	var all []byte
	for _, v := range vf.Frames {
		b := unhex(v.Hex)
		f.Add(b, uint8(0))
		all = append(all, b...)
	}
	f.Add(all, uint8(1))
	f.Add(append(bytes.Clone(all), 0, 0, 0, 0), uint8(2))                // empty frame
	f.Add(append(bytes.Clone(all), 0xff, 0xff, 0xff, 0xfc, 1), uint8(3)) // huge length
	f.Add(all[:len(all)-3], uint8(0))                                    // cut
	f.Add(msgFrame(300, 'x'), uint8(1))                                  // over the buffer
	f.Fuzz(func(t *testing.T, stream []byte, mode uint8) {
		var r io.Reader = bytes.NewReader(stream)
		if mode&1 != 0 {
			r = iotest.OneByteReader(r)
		}
		bufSize := 16
		if mode&2 != 0 {
			bufSize = 64
		}
		rd := wire.NewReader(bufio.NewReaderSize(r, bufSize), fuzzMax)
		off := 0
		for {
			fr, err := rd.Next()
			if err != nil {
				rest := stream[off:]
				switch {
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if len(rest) == 0 {
						t.Fatal("io.ErrUnexpectedEOF at a frame boundary")
					}
					if len(rest) >= 4 && uint64(binary.BigEndian.Uint32(rest)) <= uint64(len(rest)-4) {
						t.Fatal("io.ErrUnexpectedEOF with the whole frame there")
					}
				case errors.Is(err, wire.ErrEmpty):
					if len(rest) < 4 || binary.BigEndian.Uint32(rest) != 0 {
						t.Fatal("ErrEmpty for a non-zero length")
					}
				case errors.Is(err, wire.ErrTooLarge):
					if len(rest) < 4 || binary.BigEndian.Uint32(rest) <= fuzzMax {
						t.Fatal("ErrTooLarge for an acceptable length")
					}
				default:
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			n := binary.BigEndian.Uint32(fr.Raw)
			if n == 0 || n > fuzzMax {
				t.Fatalf("frame with length field %d, max %d", n, fuzzMax)
			}
			if len(fr.Raw) != 4+int(n) {
				t.Fatalf("Raw is %d bytes, length field %d", len(fr.Raw), n)
			}
			if !bytes.Equal(fr.Raw, stream[off:off+len(fr.Raw)]) {
				t.Fatal("Raw differs from the stream")
			}
			if fr.Type != fr.Raw[4] || !bytes.Equal(fr.Payload, fr.Raw[wire.HeaderLen:]) {
				t.Fatal("Type or Payload disagree with Raw")
			}
			off += len(fr.Raw)
			// Whatever arrives, the decoders must not panic.
			for typ := wire.TypeHello; typ <= wire.TypeReply; typ++ {
				parse(typ, fr.Payload)
			}
		}
	})
}

// FuzzParseMsg decodes a Msg frame: it never panics, and whatever parses
// re-encodes to exactly the same bytes. An input that is not a Msg frame
// is taken as a payload and given a header.
func FuzzParseMsg(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.Frames {
		if v.Msg != nil {
			b := unhex(v.Hex)
			f.Add(b)
			f.Add(b[wire.HeaderLen:])
			f.Add(b[:len(b)-1])
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < wire.HeaderLen || frame[4] != wire.TypeMsg || uint64(binary.BigEndian.Uint32(frame)) != uint64(len(frame)-4) {
			frame = append(wire.AppendHeader(nil, wire.TypeMsg, len(frame)), frame...)
		}
		v, err := wire.ParseMsg(frame[wire.HeaderLen:])
		if err != nil {
			if !errors.Is(err, wire.ErrTruncated) {
				t.Fatalf("error %v is not ErrTruncated", err)
			}
			return
		}
		m := v.Msg()
		if got := wire.AppendMsg(nil, &m); !bytes.Equal(got, frame) {
			t.Fatalf("re-encoded:\n got %x\nwant %x", got, frame)
		}
		if wire.MsgSize(&m) != len(frame) {
			t.Fatalf("MsgSize %d, frame %d", wire.MsgSize(&m), len(frame))
		}
	})
}

// FuzzLegacy reads and parses a random legacy stream (never panics; no
// message contains a NUL or exceeds the maximum), and renders a random
// message: the output always ends in its only NUL, the JSON before it is
// valid, and a JSON decoder gets the data back.
func FuzzLegacy(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.LegacyParse {
		f.Add([]byte(v.Input+"\x00"+v.Input), byte(0), "A", "e", []byte(v.Data))
	}
	for _, v := range vf.LegacyRender {
		f.Add([]byte(v.Output), v.Msg.Flags, v.Msg.Channel, v.Msg.Event, v.Msg.data())
	}
	const max = 256
	f.Fuzz(func(t *testing.T, stream []byte, flags byte, channel, event string, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(stream), 16)
		var scratch []byte
		for {
			b, err := wire.ReadLegacy(br, max, &scratch)
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, wire.ErrLegacyTooLarge) {
					t.Fatalf("unexpected error: %v", err)
				}
				break
			}
			if bytes.IndexByte(b, 0) >= 0 {
				t.Fatal("a message contains a NUL")
			}
			if len(b) > max {
				t.Fatalf("a %d-byte message, max %d", len(b), max)
			}
			env, err := wire.ParseLegacy(b)
			if err == nil && (env.Event == "" || !json.Valid(env.Data)) {
				t.Fatalf("ParseLegacy accepted event %q, data %q", env.Event, env.Data)
			}
		}

		v := wire.MsgView{Flags: flags, Channel: []byte(channel), Event: []byte(event), Data: data}
		out := wire.AppendLegacy(nil, &v)
		if bytes.IndexByte(out, 0) != len(out)-1 {
			t.Fatalf("the NUL is not the last byte and the only one: %q", out)
		}
		doc := out[:len(out)-1]
		if !json.Valid(doc) {
			t.Fatalf("not valid JSON: %q", doc)
		}
		var m struct {
			Channel   string
			Broadcast bool
			Event     string
			Data      json.RawMessage
		}
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(channel) && m.Channel != channel || utf8.ValidString(event) && m.Event != event {
			t.Fatalf("names %q %q came back as %q %q", channel, event, m.Channel, m.Event)
		}
		var s string
		switch {
		case flags&wire.FlagJSON != 0 && len(data) == 0:
			if string(m.Data) != "null" {
				t.Fatalf("empty JSON data rendered as %s", m.Data)
			}
		case flags&wire.FlagJSON != 0 && json.Valid(data) && utf8.Valid(data):
			if string(m.Data) != strings.Trim(string(data), " \t\r\n") {
				t.Fatalf("JSON data %q rendered as %q", data, m.Data)
			}
		case utf8.Valid(data):
			if err := json.Unmarshal(m.Data, &s); err != nil || s != string(data) {
				t.Fatalf("UTF-8 data %q rendered as %s (%v)", data, m.Data, err)
			}
		default:
			if err := json.Unmarshal(m.Data, &s); err != nil {
				t.Fatal(err)
			}
			if b, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("binary data %x rendered as %s", data, m.Data)
			}
		}
	})
}
