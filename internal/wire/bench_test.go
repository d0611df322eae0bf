package wire_test

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

func bench128Msg() wire.Msg {
	return wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "agent-1", Event: "log", Data: bytes.Repeat([]byte("x"), 128)}
}

// BenchmarkAppendMsg128 encodes a Msg with 128 bytes of data into a
// reused buffer.
func BenchmarkAppendMsg128(b *testing.B) {
	m := bench128Msg()
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(wire.MsgSize(&m)))
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendMsg(buf[:0], &m)
	}
}

// BenchmarkParseMsg decodes the same frame without copying.
func BenchmarkParseMsg(b *testing.B) {
	m := bench128Msg()
	p := wire.AppendMsg(nil, &m)[wire.HeaderLen:]
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseMsg(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderNext reads 128-byte frames from an endless stream through
// a 32 KiB bufio.Reader, as the server does, and through a growing Reader
// of 64 KiB, as an agent does.
func BenchmarkReaderNext(b *testing.B) {
	frame := msgFrame(128, 'x')
	src := func() io.Reader { return &cycleReader{data: bytes.Repeat(frame, 64)} }
	for _, tt := range []struct {
		name string
		rd   *wire.Reader
	}{
		{"bufio", wire.NewReader(bufio.NewReaderSize(src(), 32<<10), wire.DefaultMaxFrame)},
		{"growing", wire.NewGrowingReader(src(), 64<<10, 256<<10, wire.DefaultMaxFrame)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tt.rd.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendLegacy renders a 128-byte JSON message for a legacy peer.
func BenchmarkAppendLegacy(b *testing.B) {
	m := bench128Msg()
	m.Data = []byte(`{"text":"` + string(bytes.Repeat([]byte("x"), 117)) + `"}`)
	p := wire.AppendMsg(nil, &m)[wire.HeaderLen:]
	v, err := wire.ParseMsg(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendLegacy(buf[:0], &v)
	}
}

// BenchmarkReadParseLegacy reads and parses a 128-byte legacy message.
func BenchmarkReadParseLegacy(b *testing.B) {
	msg := append(legacyMsg(128, 'x'), 0)
	br := bufio.NewReaderSize(&cycleReader{data: bytes.Repeat(msg, 64)}, 32<<10)
	var scratch []byte
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := wire.ReadLegacy(br, wire.DefaultMaxFrame, &scratch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wire.ParseLegacy(m); err != nil {
			b.Fatal(err)
		}
	}
}
