package server

import (
	"bufio"
	"context"
	"io"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// queueSetup makes a server with channel A and a queue group "g" of n
// members for "ev", version 3 agents whose writers write to sinks, and a
// sender on A reading an endless stream of 128-byte SeqMsg frames for
// "ev", as a version 3 agent's batches bring them (S12 in one process).
func queueSetup(t testing.TB, n int) (src *conn, members []*conn) {
	t.Helper()
	bus := config.New()
	bus.Channels["A"] = &config.Channel{}
	s, err := New(Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := s.channels["A"]
	for i := range n {
		c := newConn(a, sink{})
		c.id, c.version = "worker"+string(rune('a'+i)), wire.VersionAcks
		if _, ok := a.join(c); !ok {
			t.Fatal("join failed")
		}
		if err := c.queueListen(wire.QueueListen{SID: 1, Group: "g", Pattern: "ev"}); err != nil {
			t.Fatal(err)
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			c.writeLoop()
		}()
		members = append(members, c)
	}
	src = newConn(a, sink{})
	src.id, src.version = "pub", wire.VersionAcks
	frame := wire.AppendSeqMsg(nil, 7, 1, &wire.Msg{Channel: "A", Agent: "pub", Event: "ev", Data: make([]byte, 128)})
	var stream []byte
	for len(stream)+len(frame) <= readBufSize {
		stream = append(stream, frame...)
	}
	src.rd = wire.NewReader(bufio.NewReaderSize(&cycle{b: stream}, readBufSize), wire.DefaultMaxFrame)
	return src, members
}

// The dispatch of a message to a queue group member (frame reader, origin
// check, group match, pick, QueueMsg into the member's outbox) allocates
// nothing, and the members get equal shares.
func TestQueueRouteAllocatesNothing(t *testing.T) {
	src, members := queueSetup(t, 4)
	for range 1000 {
		readOne(t, src)
	}
	time.Sleep(10 * time.Millisecond)
	if n := testing.AllocsPerRun(10000, func() { readOne(t, src) }); n != 0 {
		t.Fatalf("dispatching a message to a queue group allocates %.2f times", n)
	}
	const total = 11001 // AllocsPerRun runs once more
	var sum uint64
	for _, c := range members {
		got := c.delivered()
		sum += got
		if got < total/4-1 || got > total/4+1 {
			t.Errorf("member %s got %d of %d", c.id, got, total)
		}
	}
	if sum != total {
		t.Errorf("members got %d messages in all, want %d", sum, total)
	}
}
