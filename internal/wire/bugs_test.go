package wire_test

// KNOWN CODEC BUGS. Each test below demonstrates a bug in the codec
// (reader.go, legacy.go) and FAILS until the fix described on it is made.
// They are named TestBug… so that `go test -skip TestBug` runs the rest.

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestBugReaderConsumesLazily: Reader.Next leaves the frame it returns in
// the bufio.Reader (it Peeks, and Discards only at the start of the next
// Next). Anything else that reads br afterwards sees that frame again.
// server/conn.go does exactly this: handshake() reads Hello with one
// wire.NewReader(br, …), then readNative() makes a second Reader over the
// same br, which returns the Hello again; the server answers "unexpected
// hello frame from an agent" (CodeProtocol) and closes every native
// connection.
//
// Fix (reader.go): consume the frame before returning it. Delete the
// discard field and the block that uses it at the top of Next, and in the
// in-buffer path replace `r.discard = total` with
//
//	r.br.Discard(total) // cannot fail: the bytes were peeked
//
// The returned slices stay valid until the next read of br: Discard of
// buffered bytes only advances bufio's read index. (Independently, the
// server should keep one Reader per connection.)
func TestBugReaderConsumesLazily(t *testing.T) {
	t.Parallel()
	hello := wire.AppendHello(nil, wire.Hello{Version: wire.Version, PID: 1, AgentID: "a1", Channel: "A"})
	listen := wire.AppendListen(nil, wire.TypeListen, ".*")
	stream := append(append([]byte(wire.Preamble), hello...), listen...)

	// The server's sequence: peek the first byte and the preamble, discard
	// the preamble, read Hello with one Reader, then serve the connection
	// with another.
	br := bufio.NewReaderSize(bytes.NewReader(stream), 32<<10)
	if _, err := br.Peek(len(wire.Preamble)); err != nil {
		t.Fatal(err)
	}
	br.Discard(len(wire.Preamble))
	f, err := wire.NewReader(br, wire.DefaultMaxFrame).Next()
	if err != nil || f.Type != wire.TypeHello {
		t.Fatalf("handshake: %v, %s", err, wire.TypeName(f.Type))
	}
	if br.Buffered() != len(listen) {
		t.Errorf("after Next returned Hello, %d bytes are still buffered, want %d (the Listen frame only)", br.Buffered(), len(listen))
	}
	f, err = wire.NewReader(br, wire.DefaultMaxFrame).Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != wire.TypeListen {
		t.Fatalf("the second Reader returned a %s frame, want listen: the Hello was read twice", wire.TypeName(f.Type))
	}
}

// TestBugReadLegacyMaxInBuffer: ReadLegacy checks max only when the message
// is longer than the bufio buffer. A message that fits in the buffer is
// returned whatever its length, so with the server's 32 KiB read buffer and
// a configured maxframe of 1024 (the smallest config allows) a legacy peer
// can send 32 KiB messages.
//
// Fix (legacy.go), in the fast path of ReadLegacy:
//
//	line, err := br.ReadSlice(0)
//	if err == nil {
//		if len(line)-1 > max {
//			return nil, fmt.Errorf("%w: no NUL within %d bytes", ErrLegacyTooLarge, max)
//		}
//		return line[:len(line)-1], nil
//	}
func TestBugReadLegacyMaxInBuffer(t *testing.T) {
	t.Parallel()
	const max = 100
	msg := append(legacyMsg(200, 'x'), 0)
	br := bufio.NewReaderSize(bytes.NewReader(msg), 4096)
	var scratch []byte
	b, err := wire.ReadLegacy(br, max, &scratch)
	if !errors.Is(err, wire.ErrLegacyTooLarge) {
		t.Fatalf("a %d-byte message with max %d: got %d bytes, err %v; want ErrLegacyTooLarge", len(msg)-1, max, len(b), err)
	}
}

// TestBugReaderLengthOverflow32 passes on 64-bit platforms and PANICS on
// 32-bit ones (GOARCH=386 or arm: `GOARCH=386 go test -run
// TestBugReaderLengthOverflow32 ./internal/wire/`). Next converts the u32
// length field to int before comparing it with max; on a 32-bit int a
// length of 0xFFFFFFFC is -4, passes both checks, and raw[4] on a 0-byte
// Peek panics: any peer can crash a 32-bit server with 4 bytes. Lengths
// from 2^31 up give bufio.ErrNegativeCount instead of ErrTooLarge.
//
// Fix (reader.go), at the top of the length checks in Next:
//
//	n32 := binary.BigEndian.Uint32(hdr)
//	switch {
//	case n32 == 0:
//		return Frame{}, ErrEmpty
//	case uint64(n32) > uint64(r.max):
//		return Frame{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, n32, r.max)
//	}
//	n := int(n32) // fits: n32 <= r.max
func TestBugReaderLengthOverflow32(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{0xFFFFFFFF, 0xFFFFFFFC, 0xFFFFFFFB, 0x80000000, 0x7FFFFFFF} {
		stream := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), wire.TypeMsg, 0, 0, 0, 0, 0, 0, 0}
		rd := wire.NewReader(bufio.NewReader(bytes.NewReader(stream)), wire.DefaultMaxFrame)
		if _, err := rd.Next(); !errors.Is(err, wire.ErrTooLarge) {
			t.Errorf("length field %#x: err = %v, want ErrTooLarge", n, err)
		}
	}
}
