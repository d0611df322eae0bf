package netcluster_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/server"
)

// stressData is message i's data: its number and length, then bytes that
// depend on both, so that any part of it overwritten by another message
// shows (size: 16 to 200 bytes mostly, some past the slabs' 1 KiB).
func stressData(i int) []byte {
	n := 16 + (i*37)%185
	if i%23 == 0 {
		n = 1000 + (i*131)%900 // around and past maxSlabData
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(i))
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	for j := 8; j < n; j++ {
		b[j] = byte(i*7 + j)
	}
	return b
}

// stressCheck returns the number of data made by stressData, or an error.
func stressCheck(b []byte) (int, error) {
	if len(b) < 8 {
		return -1, fmt.Errorf("%d bytes", len(b))
	}
	i, n := int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
	if n != len(b) {
		return i, fmt.Errorf("message %d: %d bytes, says %d", i, len(b), n)
	}
	for j := 8; j < n; j++ {
		if b[j] != byte(i*7+j) {
			return i, fmt.Errorf("message %d: byte %d is %d", i, j, b[j])
		}
	}
	return i, nil
}

// Borrowed messages under a mixed load: small and large messages, every
// kind of listener, requests answered after their handler returns, and
// the server restarted twice with batches still queued (a slow handler
// keeps the queue full). Every handler checks its data when it starts
// and again after yielding; -race checks the hand-overs.
func TestBorrowedMessagesStress(t *testing.T) {
	// 64 KiB: 4 slabs of each kind, so the reader often makes slabs past
	// the budget; 16 MiB (the default): 64, hardly ever.
	for _, q := range []int{64 << 10, 16 << 20} {
		t.Run(fmt.Sprint(q>>10, "KiB"), func(t *testing.T) { borrowStress(t, q) })
	}
}

func borrowStress(t *testing.T, queueSize int) {
	dir := testutil.ShortDir(t)
	bus := config.Default()
	bus.SocketDir = dir
	start := func() *server.Server {
		srv, err := server.New(server.Config{Bus: bus})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	var errs, downs atomic.Int64
	dst := connect(t, dir, "A", netcluster.WithBorrowedMessages(), netcluster.WithQueueSize(queueSize),
		netcluster.WithErrorHandler(func(error) { errs.Add(1) }),
		netcluster.WithStateHandler(func(s netcluster.State, _ error) {
			if s == netcluster.Disconnected {
				downs.Add(1)
			}
		}))
	src := connect(t, dir, "A")

	var mu sync.Mutex
	var problems []string
	problem := func(where string, err error) {
		mu.Lock()
		if len(problems) < 10 {
			problems = append(problems, where+": "+err.Error())
		}
		mu.Unlock()
	}
	check := func(where string, m *netcluster.Message) int {
		i, err := stressCheck(m.Data)
		if err != nil {
			problem(where, err)
		}
		return i
	}
	var got atomic.Int64
	var slow atomic.Bool
	handler := func(where string) netcluster.Handler {
		return func(m *netcluster.Message) {
			i := check(where, m)
			if slow.Load() && i%64 == 0 {
				time.Sleep(time.Millisecond) // keeps batches queued across the restart
			} else if i%8 == 0 {
				runtime.Gosched()
			}
			check(where+" (again)", m)
		}
	}
	on := handler("On")
	if _, err := dst.On("ev", func(m *netcluster.Message) { on(m); got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.On("e.", handler("On e.")); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Once("ev", handler("Once")); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.OnQueue("ev", "g", handler("OnQueue")); err != nil {
		t.Fatal(err)
	}
	// Requests are the handler's to keep: answered on another goroutine,
	// after checking their data there.
	var answering sync.WaitGroup
	if _, err := dst.On("rq", func(m *netcluster.Message) {
		check("request", m)
		answering.Add(1)
		go func() {
			defer answering.Done()
			time.Sleep(time.Millisecond)
			check("request kept", m)
			m.ReplyRaw(context.Background(), m.Data)
		}()
	}); err != nil {
		t.Fatal(err)
	}
	defer answering.Wait()
	// Longer than ctxT's 20 s: two restarts and 20,000 messages under
	// -race on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dst.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	const n = 20_000
	var sending sync.WaitGroup
	sending.Add(1)
	go func() { // requests, concurrently with the stream
		defer sending.Done()
		for i := 0; i < 200 && ctx.Err() == nil; i++ {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			d := stressData(n + i)
			r, err := src.RequestRaw(rctx, "rq", d)
			cancel()
			if err == nil {
				if _, err := stressCheck(r.Data); err != nil {
					problem("answer", err)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range n {
		switch i {
		case n / 3, 2 * n / 3:
			// What src emitted so far is routed to dst by the old server.
			if err := src.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			slow.Store(true)
			time.Sleep(20 * time.Millisecond)
			d := downs.Load()
			srv.Close()
			srv = start()
			// dst back on the new server, its listeners registered, before
			// src emits on: a message routed while dst is away reaches no
			// listener (on a loaded machine dst came back late, and the
			// test got 7,245 of 20,000).
			for downs.Load() == d && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			if err := dst.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			slow.Store(false)
		}
		if err := src.EmitRaw(ctx, "ev", stressData(i)); err != nil {
			t.Fatal(err)
		}
	}
	sending.Wait()
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for got.Load() < n && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Close()
	dst.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("%d messages, problems: %q", got.Load(), problems)
	}
	if got.Load() < n {
		t.Fatalf("%d messages of %d", got.Load(), n)
	}
	if downs.Load() < 2 {
		t.Fatalf("%d disconnections, want 2 (the restarts)", downs.Load())
	}
	t.Logf("%d messages, %d errors reported", got.Load(), errs.Load())
}
