package netcluster

import (
	"bufio"
	"encoding/binary"
	"runtime"
	"testing"
	"unsafe"

	"github.com/netcluster/netcluster/internal/wire"
)

// endless is a stream of its bytes over and over.
type endless struct {
	b   []byte
	off int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.b[e.off:])
	e.off = (e.off + n) % len(e.b)
	return n, nil
}

// recvSetup returns a frame reader over an endless stream of 128-byte
// messages, as the server's batches bring them, and the reader's decoder.
func recvSetup() (*wire.Reader, *recvAlloc) {
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: "bench", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)})
	var stream []byte
	for len(stream)+len(frame) <= readBufSize {
		stream = append(stream, frame...)
	}
	return wire.NewReader(bufio.NewReaderSize(&endless{b: stream}, readBufSize), wire.DefaultMaxFrame), &recvAlloc{}
}

func recvOne(t testing.TB, rd *wire.Reader, alloc *recvAlloc) *Message {
	f, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	m, err := alloc.received(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Receiving a message (frame reader and decoding into a Message the
// handler owns) allocates nothing per message: messages and their data
// come from slabs, one allocation for many messages, and names seen
// before are not copied again.
func TestReceiveAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	rd, alloc := recvSetup()
	checkRecvAllocs(t, rd, alloc, "received")
	m := recvOne(t, rd, alloc)
	if m.Event != "bench" || m.Channel != "bench" || m.Agent != "pub-1" || len(m.Data) != 128 {
		t.Fatalf("received %+v", m)
	}
}

// checkRecvAllocs checks that receiving from rd allocates nothing per
// message: not once in AllocsPerRun, and over 100,000 messages at most
// 1/32 of an allocation each (a slab of msgSlab messages, and one of data
// per 16 KiB of 128-byte data: 2/128 per message). It returns the
// TotalAlloc bytes per message of those 100,000.
func checkRecvAllocs(t *testing.T, rd *wire.Reader, alloc *recvAlloc, what string) (bytesPer float64) {
	t.Helper()
	for range 1000 {
		recvOne(t, rd, alloc)
	}
	if n := testing.AllocsPerRun(1000, func() { recvOne(t, rd, alloc) }); n != 0 {
		t.Fatalf("a message %s: %.2f allocations", what, n)
	}
	per, bytesPer := allocsPer(func() { recvOne(t, rd, alloc) })
	if per > 1.0/32 {
		t.Fatalf("%.4f allocations per message %s, want at most 1/32", per, what)
	}
	return bytesPer
}

// allocsPer calls f 100,000 times and returns the allocations and the
// bytes allocated per call.
func allocsPer(f func()) (allocs, bytes float64) {
	const calls = 100_000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / calls, float64(after.TotalAlloc-before.TotalAlloc) / calls
}

// BenchmarkReceive is an agent's reader goroutine for one 128-byte
// message: frame reader and decoding into a Message.
func BenchmarkReceive(b *testing.B) {
	rd, alloc := recvSetup()
	b.ReportAllocs()
	b.SetBytes(128)
	for b.Loop() {
		recvOne(b, rd, alloc)
	}
}

// queuedSetup is recvSetup for QueueMsg frames, as a queue group member
// gets them, and the agent to decode them with.
func queuedSetup() (*wire.Reader, *recvAlloc, *Agent) {
	return queuedSetupOf(false)
}

// queuedSetupOf is queuedSetup, of requests (Call frames) if calls is set.
func queuedSetupOf(calls bool) (*wire.Reader, *recvAlloc, *Agent) {
	m := &wire.Msg{Channel: "bench", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)}
	inner := wire.AppendMsg(nil, m)
	if calls {
		inner = wire.AppendCall(nil, 7, m)
	}
	frame := wire.AppendQueueMsg(nil, 3, inner)
	var stream []byte
	for len(stream)+len(frame) <= readBufSize {
		stream = append(stream, frame...)
	}
	return wire.NewReader(bufio.NewReaderSize(&endless{b: stream}, readBufSize), wire.DefaultMaxFrame), &recvAlloc{}, &Agent{}
}

func recvQueued(t testing.TB, rd *wire.Reader, alloc *recvAlloc, a *Agent) *Message {
	f, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	m, sid, err := a.readCall(alloc, alloc, f)
	if err != nil || sid != 3 {
		t.Fatalf("readCall: sid %d, %v", sid, err)
	}
	return m
}

// A queue group member's message (a QueueMsg) allocates nothing either.
func TestReceiveQueuedAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	rd, alloc, a := queuedSetup()
	for range 1000 {
		recvQueued(t, rd, alloc, a)
	}
	if per, _ := allocsPer(func() { recvQueued(t, rd, alloc, a) }); per > 1.0/32 {
		t.Fatalf("%.4f allocations per queued message received, want at most 1/32", per)
	}
	m := recvQueued(t, rd, alloc, a)
	if m.Event != "bench" || m.Channel != "bench" || m.Agent != "pub-1" || len(m.Data) != 128 || m.IsRequest() {
		t.Fatalf("received %+v", m)
	}
}

// A queue group member's request (a QueueMsg of a Call) allocates nothing
// either: its call (the agent and request id that Reply needs) comes from
// a slab too.
func TestReceiveQueuedCallAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	rd, alloc, a := queuedSetupOf(true)
	for range 1000 {
		recvQueued(t, rd, alloc, a)
	}
	if per, _ := allocsPer(func() { recvQueued(t, rd, alloc, a) }); per > 1.0/16 {
		t.Fatalf("%.4f allocations per queued request received, want at most 1/16", per)
	}
	m := recvQueued(t, rd, alloc, a)
	if !m.IsRequest() || m.call.agent != a || m.call.id != 7 || m.Event != "bench" || len(m.Data) != 128 {
		t.Fatalf("received %+v", m)
	}
}

// BenchmarkReceiveQueued is BenchmarkReceive for a queue group member's
// messages (QueueMsg frames, S12's workers).
func BenchmarkReceiveQueued(b *testing.B) {
	rd, alloc, a := queuedSetup()
	b.ReportAllocs()
	b.SetBytes(128)
	for b.Loop() {
		recvQueued(b, rd, alloc, a)
	}
}

// A Message, of which every message received costs one, keeps its flags
// together and a request's call behind one pointer: 104 bytes on 64-bit
// platforms, not the 128 of interleaved flags or the 112 of two words for
// the call.
func TestMessageSize(t *testing.T) {
	t.Parallel()
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(Message{}) != 104 {
		t.Fatalf("a Message is %d bytes, want 104", unsafe.Sizeof(Message{}))
	}
}

// seqEndless is endless for SeqMsg frames: each time round, the frames at
// seqAt get the next numbers, as a sender's stream does.
type seqEndless struct {
	endless
	seqAt []int
	seq   uint64
}

func (e *seqEndless) Read(p []byte) (int, error) {
	if e.off == 0 {
		for _, at := range e.seqAt {
			e.seq++
			binary.BigEndian.PutUint64(e.b[at:], e.seq)
		}
	}
	return e.endless.Read(p)
}

// seqSetup is recvSetup for numbered messages (SeqMsg frames, as S1's
// subscriber gets them), and the agent whose origins check their numbers.
func seqSetup() (*wire.Reader, *recvAlloc, *Agent) {
	m := &wire.Msg{Channel: "bench", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)}
	frame := wire.AppendSeqMsg(nil, 7, 1, m)
	e := &seqEndless{}
	for len(e.b)+len(frame) <= readBufSize {
		e.seqAt = append(e.seqAt, len(e.b)+wire.HeaderLen+4)
		e.b = append(e.b, frame...)
	}
	return wire.NewReader(bufio.NewReaderSize(e, readBufSize), wire.DefaultMaxFrame), &recvAlloc{}, &Agent{}
}

func recvSeqOne(t testing.TB, rd *wire.Reader, alloc *recvAlloc, a *Agent) *Message {
	f, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := a.recvSeq(alloc, f.Payload)
	if err != nil || m == nil {
		t.Fatalf("recvSeq: %v, %v", m, err)
	}
	return m
}

// A numbered message (a SeqMsg, what a sender of protocol version 4
// sends) allocates nothing per message either.
func TestReceiveSeqAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	rd, alloc, a := seqSetup()
	for range 1000 {
		recvSeqOne(t, rd, alloc, a)
	}
	if n := testing.AllocsPerRun(1000, func() { recvSeqOne(t, rd, alloc, a) }); n != 0 {
		t.Fatalf("a numbered message received: %.2f allocations", n)
	}
	if per, _ := allocsPer(func() { recvSeqOne(t, rd, alloc, a) }); per > 1.0/32 {
		t.Fatalf("%.4f allocations per numbered message received, want at most 1/32", per)
	}
	m := recvSeqOne(t, rd, alloc, a)
	if m.Event != "bench" || m.Channel != "bench" || m.Agent != "pub-1" || len(m.Data) != 128 {
		t.Fatalf("received %+v", m)
	}
}

// BenchmarkReceiveSeq is BenchmarkReceive for numbered messages (SeqMsg
// frames: S1's subscriber), their numbers checked.
func BenchmarkReceiveSeq(b *testing.B) {
	rd, alloc, a := seqSetup()
	b.ReportAllocs()
	b.SetBytes(128)
	for b.Loop() {
		recvSeqOne(b, rd, alloc, a)
	}
}
