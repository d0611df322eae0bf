package netcluster_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// streamServer serves one agent of channel A on a socket in dir as
// BenchmarkReceiveAgent's fake server does: once start is called it
// writes numbered 128-byte messages (SeqMsg frames, 64 KiB at a time)
// until the agent goes; each message's data starts with its number too,
// so that a handler can tell whether the data it sees is its message's.
// It writes a chunk only while the agent has handled all but two chunks
// of what it wrote (handled): a dispatcher descheduled for a while on a
// busy machine would otherwise let the reader pass more slabs than are
// kept for reuse, and the test count the allocations of that machine.
func streamServer(t *testing.T, dir string, handled *atomic.Uint64) (start func()) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(dir, "netcluster-A"))
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.Msg{Channel: "bench", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)}
	const mark = 0x0102030405060708
	binary.BigEndian.PutUint64(m.Data, mark)
	frame := wire.AppendSeqMsg(nil, 7, mark, m)
	seqAt := bytes.Index(frame, binary.BigEndian.AppendUint64(nil, mark))
	dataAt := bytes.LastIndex(frame, binary.BigEndian.AppendUint64(nil, mark))
	var chunk []byte
	for len(chunk)+len(frame) <= 64<<10 {
		chunk = append(chunk, frame...)
	}
	go0, served, quit := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var conn net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		close(quit)
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-served
	})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		mu.Lock()
		conn = nc
		mu.Unlock()
		_, rd, err := fakeWelcome(nc)
		if err != nil {
			return
		}
		pongs := make(chan struct{})
		defer func() { <-pongs }()
		go func() { // Listen, Ping (Flush): Pong
			defer close(pongs)
			for {
				f, err := rd.Next()
				if err != nil {
					return
				}
				if f.Type == wire.TypePing {
					tok, _ := wire.ParseU64(f.Payload)
					nc.Write(wire.AppendU64(nil, wire.TypePong, tok))
				}
			}
		}()
		<-go0
		seq := uint64(0)
		for {
			for seq > handled.Load()+2*uint64(len(chunk)/len(frame)) {
				select {
				case <-quit:
					return
				default:
					time.Sleep(50 * time.Microsecond) // (time.After would allocate)
				}
			}
			for o := 0; o < len(chunk); o += len(frame) {
				seq++
				binary.BigEndian.PutUint64(chunk[o+seqAt:], seq)
				binary.BigEndian.PutUint64(chunk[o+dataAt:], seq)
			}
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(go0) }) }
}

// waitClosed waits up to 20 s for ch to be closed: a handler that sees
// another message's data, or none, may never count to the end.
func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not all come in 20 s", what)
	}
}

// keptAt is the message whose Data streamCounter keeps: one past the
// first slabs, made before the agent has any to reuse.
const keptAt = 10_000

// streamCounter is the listener of streamServer's messages: it checks
// that each message's data is its own while the handler runs, keeps the
// Data of message keptAt, and signals at the counts asked.
type streamCounter struct {
	n     uint64
	done  atomic.Uint64 // n, for streamServer
	bad   uint64        // the first message whose data was not its own
	first []byte        // message keptAt's Data, kept (against the rules when borrowed)
	at    map[uint64]chan struct{}
}

func (c *streamCounter) handle(m *netcluster.Message) {
	c.n++
	if (len(m.Data) != 128 || binary.BigEndian.Uint64(m.Data) != c.n) && c.bad == 0 {
		c.bad = c.n
	}
	if c.n == keptAt {
		c.first = m.Data
	}
	if ch := c.at[c.n]; ch != nil {
		close(ch)
	}
	c.done.Store(c.n)
}

// With WithBorrowedMessages a stream of messages allocates nothing per
// message once the slabs circulate (without it, a Message slab every 157
// messages and a data slab every 128: 0.014 allocations a message), each
// handler sees its own message's data, and the memory of a message
// handled is reused: the Data the test kept against the rules is
// overwritten. Without the option the kept Data stays the message's.
func TestBorrowedMessagesRecycled(t *testing.T) { // not parallel: counts allocations
	for _, borrow := range []bool{true, false} {
		t.Run(fmt.Sprintf("borrow=%v", borrow), func(t *testing.T) {
			dir := t.TempDir()
			const warm, measured = 50_000, 200_000
			c := &streamCounter{at: map[uint64]chan struct{}{warm: make(chan struct{}), warm + measured: make(chan struct{})}}
			start := streamServer(t, dir, &c.done)
			opts := []netcluster.Option{netcluster.WithoutReconnect()}
			if borrow {
				opts = append(opts, netcluster.WithBorrowedMessages())
			}
			a := connect(t, dir, "A", opts...)
			if _, err := a.On("bench", c.handle); err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			start()
			var before, after runtime.MemStats
			waitClosed(t, c.at[warm], "the warm-up messages")
			runtime.ReadMemStats(&before)
			waitClosed(t, c.at[warm+measured], "the messages measured")
			runtime.ReadMemStats(&after)
			a.Close(ctxT(t)) // the handler's fields are read after it stops
			per := float64(after.Mallocs-before.Mallocs) / measured
			t.Logf("%.5f allocations, %.1f bytes a message", per, float64(after.TotalAlloc-before.TotalAlloc)/measured)
			if c.bad != 0 {
				t.Fatalf("message %d: its handler saw another message's data", c.bad)
			}
			kept := binary.BigEndian.Uint64(c.first)
			if borrow {
				// (A few: the queue's batch arrays, when more batches
				// than it keeps wait at once, are made anew.)
				if per > 0.0005 {
					t.Errorf("%.5f allocations a message received, want none but a few in %d", per, measured)
				}
				if kept == keptAt {
					t.Errorf("message %d's Data, kept, is still its own: nothing was reused", keptAt)
				}
			} else if kept != keptAt {
				t.Errorf("without the option, message %d's Data, kept, holds %d", keptAt, kept)
			}
		})
	}
}

// Under WithBorrowedMessages every kind of listener sees its message's
// data while it runs (On, Once, a queue group, the agent's own messages),
// a message kept with Clone stays whole, and a request may be answered
// after its handler returned, with its data intact, while thousands of
// messages went through the recycled slabs in between.
func TestBorrowedMessagesListenersAndRequests(t *testing.T) {
	t.Parallel()
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A", netcluster.WithBorrowedMessages())
	b := connect(t, dir, "A")
	const n, requests = 20_000, 8
	number := func(m *netcluster.Message) int {
		if len(m.Data) != 128 {
			return -1
		}
		return int(binary.BigEndian.Uint64(m.Data))
	}
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	// The handlers run one at a time on the agent's goroutine: these are
	// theirs until the test has waited for done.
	var onN, queueN, onceN, selfN int
	var clone *netcluster.Message
	var reqs []*netcluster.Message
	done, gotReqs := make(chan struct{}), make(chan struct{})
	if _, err := a.On("ev", func(m *netcluster.Message) {
		if got := number(m); got != onN {
			problem("On: message %d holds %d", onN, got)
		}
		if onN == 0 {
			clone = m.Clone()
		}
		onN++
		if onN == n {
			close(done)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Once("ev", func(m *netcluster.Message) {
		onceN++
		if got := number(m); got != 0 {
			problem("Once: got message %d", got)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OnQueue("ev", "g", func(m *netcluster.Message) {
		if got := number(m); got != queueN {
			problem("OnQueue: message %d holds %d", queueN, got)
		}
		queueN++
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.On("self", func(m *netcluster.Message) {
		if !m.Local || number(m) != selfN {
			problem("own message %d: Local %v, holds %d", selfN, m.Local, number(m))
		}
		selfN++
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.On("req", func(m *netcluster.Message) {
		reqs = append(reqs, m) // kept: a request is the handler's
		if len(reqs) == requests {
			close(gotReqs)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		i   int
		msg *netcluster.Message
		err error
	}
	data := make([]byte, 128)
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			binary.BigEndian.PutUint64(data, uint64(i))
			if err := b.EmitRaw(ctxT(t), "ev", data); err != nil {
				t.Fatal(err)
			}
			if i < 100 {
				if err := a.EmitRaw(ctxT(t), "self", data); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The requests come after some messages, once the reader reuses
	// slabs (the first ones it makes are not), and are answered after
	// many more.
	emit(0, n/4)
	if err := b.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	answers := make(chan answer, requests)
	for i := range requests {
		go func() {
			m, err := b.RequestRaw(ctxT(t), "req", fmt.Appendf(nil, "request %d", i))
			answers <- answer{i, m, err}
		}()
	}
	waitClosed(t, gotReqs, "the requests")
	emit(n/4, n)
	waitClosed(t, done, "the messages")
	for _, m := range reqs { // after their handlers, and 20,000 messages
		if !m.IsRequest() || !bytes.HasPrefix(m.Data, []byte("request ")) {
			t.Fatalf("a request kept: %q, request %v", m.Data, m.IsRequest())
		}
		if err := m.ReplyRaw(ctxT(t), append([]byte("answer to "), m.Data...)); err != nil {
			t.Fatal(err)
		}
	}
	for range requests {
		var r answer
		select {
		case r = <-answers:
		case <-time.After(20 * time.Second):
			t.Fatal("no answer in 20 s")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if want := fmt.Sprintf("answer to request %d", r.i); string(r.msg.Data) != want {
			t.Errorf("request %d answered %q, want %q", r.i, r.msg.Data, want)
		}
	}
	if err := a.Flush(ctxT(t)); err != nil { // the queue group's last messages
		t.Fatal(err)
	}
	a.Close(ctxT(t))
	for _, p := range problems {
		t.Error(p)
	}
	if onceN != 1 || queueN != n || selfN != 100 {
		t.Errorf("Once got %d, the queue listener %d of %d, the own listener %d of 100", onceN, queueN, n, selfN)
	}
	if clone == nil || number(clone) != 0 || clone.Event != "ev" || clone.Agent != b.ID() {
		t.Errorf("the first message's clone: %+v", clone)
	}
}

// The live messages a WithReplay listener holds while its replay runs
// outlive their batches: under WithBorrowedMessages they are copied, and
// the listener gets each whole after the replay ends, though thousands
// of messages went through the slabs meanwhile.
func TestBorrowedMessagesHeldForReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 5000
	ln, err := net.Listen("unix", transport.SocketPath(dir, "D"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	var mu sync.Mutex
	var conn net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-served
	})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = nc
		mu.Unlock()
		_, rd, err := fakeWelcome(nc)
		if err != nil {
			return
		}
		var r wire.Replay
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			if f.Type == wire.TypeReplay {
				if r, err = wire.ParseReplay(f.Payload); err != nil {
					return
				}
				break
			}
		}
		out := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagReplayed, Channel: "D", Agent: "old", Event: "ev", Data: []byte("old")})
		data := make([]byte, 128)
		for i := range n {
			binary.BigEndian.PutUint64(data, uint64(i))
			out = wire.AppendMsg(out, &wire.Msg{Channel: "D", Agent: "live", Event: "ev", Data: data})
		}
		out = wire.AppendReplayEnd(out, wire.ReplayEnd{ID: r.ID, Count: 1})
		nc.Write(out)
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
	}()
	a := connect(t, dir, "D", netcluster.WithBorrowedMessages())
	var got []string
	all := make(chan struct{})
	if _, err := a.On("ev", func(m *netcluster.Message) {
		switch {
		case m.Replayed:
			got = append(got, string(m.Data))
		case len(m.Data) != 128:
			got = append(got, fmt.Sprintf("%d bytes of data", len(m.Data)))
		default:
			got = append(got, fmt.Sprint(binary.BigEndian.Uint64(m.Data)))
		}
		if len(got) == n+1 {
			close(all)
		}
	}, netcluster.WithReplay()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, all, "the messages")
	a.Close(ctxT(t))
	if got[0] != "old" {
		t.Fatalf("first message %q, want the replayed one", got[0])
	}
	for i, s := range got[1:] {
		if s != fmt.Sprint(i) {
			t.Fatalf("live message %d holds %s", i, s)
		}
	}
}
