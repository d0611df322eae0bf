package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
)

// seamLog records what a WithReplay listener gets: per source, the
// numbers, replayed or live, in the order the handler saw them.
type seamLog struct {
	mu   sync.Mutex
	seen []seamMsg
}

type seamMsg struct {
	src      string
	n        int
	replayed bool
}

func (s *seamLog) handle(m *netcluster.Message) {
	src, num, _ := strings.Cut(string(m.Data), ":")
	n, _ := strconv.Atoi(num)
	s.mu.Lock()
	s.seen = append(s.seen, seamMsg{src, n, m.Replayed})
	s.mu.Unlock()
}

func (s *seamLog) last(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := -1
	for _, m := range s.seen {
		if m.src == src && !m.replayed {
			last = m.n
		}
	}
	return last
}

// check verifies the WithReplay guarantee for source src, whose messages
// 0..total-1 were emitted in order: every replayed message comes before
// every live one; the replayed ones are 0..r in order, the live ones
// k..total-1 in order with k ≤ r+1 (nothing falls between; what overlaps,
// k..r, comes twice, replayed then live).
func (s *seamLog) check(t *testing.T, src string, total int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	liveStarted := false
	var replayed, live []int
	for _, m := range s.seen {
		switch {
		case !m.replayed:
			liveStarted = true
		case liveStarted:
			t.Fatalf("a replayed message (%s:%d) after a live one", m.src, m.n)
		}
		if m.src != src {
			continue
		}
		if m.replayed {
			replayed = append(replayed, m.n)
		} else {
			live = append(live, m.n)
		}
	}
	for i, n := range replayed {
		if n != i {
			t.Fatalf("%s: replayed %v, want 0.. in order", src, replayed)
		}
	}
	if len(live) == 0 {
		t.Fatalf("%s: nothing live (replayed %d)", src, len(replayed))
	}
	for i, n := range live {
		if n != live[0]+i {
			t.Fatalf("%s: live %v, want consecutive numbers", src, live)
		}
	}
	if live[0] > len(replayed) || live[len(live)-1] != total-1 {
		t.Fatalf("%s: replayed 0..%d, live %d..%d: want no gap, and the last (%d) live", src, len(replayed)-1, live[0], live[len(live)-1], total-1)
	}
	t.Logf("%s: replayed 0..%d, live %d..%d (%d both)", src, len(replayed)-1, live[0], live[len(live)-1], len(replayed)-live[0])
}

// TestListenWithReplaySeam adds a WithReplay listener on host 2 while
// host 1 and another agent of host 2 stream numbered messages on a
// durable channel: the listener gets the history, then the live stream,
// with nothing missing between the two, replayed before live.
func TestListenWithReplaySeam(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	chans := `{"channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, strings.Replace(chans, "{", `{"nodename": "seam1",`, 1)))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, strings.Replace(chans, "{", `{"nodename": "seam2",`, 1)))
	bbConnected(t, h1, h2)
	// Host 2's consumer runs before the listener comes (it starts with
	// the channel's first listener, and would then catch up).
	_, early := ntListen(t, h2, "D", "n")
	ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })

	const total = 400
	ctx := ctlCtx(t)
	var wg sync.WaitGroup
	resume := make(chan struct{}) // the listener is being added
	for _, src := range []struct {
		name string
		h    *ntNode
	}{{"far", h1}, {"near", h2}} {
		a := ctlAgent(t, src.h.dir, "D")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total {
				if i == total/2 {
					<-resume
				}
				if err := a.EmitRaw(ctx, "n", []byte(src.name+":"+strconv.Itoa(i))); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	late := ctlAgent(t, h2.dir, "D", netcluster.WithErrorHandler(func(err error) { t.Errorf("error handler: %v", err) }))
	// Mid-stream (the first half sent, part of it stored), the listener
	// arrives while both streams go on.
	deadline := time.Now().Add(30 * time.Second)
	for len(early.get()) < total {
		if time.Now().After(deadline) {
			far := 0
			for _, m := range early.get() {
				if strings.HasPrefix(string(m.Data), "far:") {
					far++
				}
			}
			t.Fatalf("timed out waiting for the first halves: early listener got %d, %d from far; host 2 backbone %+v; host 1 %+v", len(early.get()), far, h2.srv.Stats().Backbone, h1.srv.Stats().Backbone)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(resume)
	var log seamLog
	if _, err := late.On("n", log.handle, netcluster.WithReplay(netcluster.Last(2*total))); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for log.last("far") != total-1 || log.last("near") != total-1 {
		if time.Now().After(deadline) {
			log.mu.Lock()
			n := len(log.seen)
			log.mu.Unlock()
			t.Fatalf("timed out waiting for the last live messages: last far %d, near %d, %d seen; early listener %d; host 2 backbone %+v",
				log.last("far"), log.last("near"), n, len(early.get()), h2.srv.Stats().Backbone)
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.check(t, "far", total)
	log.check(t, "near", total)
}

// A WithReplay listener on a channel that is not durable gets live
// messages, and the replay's failure goes to the error handler.
func TestListenWithReplayNotDurable(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"P": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	errs := make(chan error, 4)
	a := ctlAgent(t, h.dir, "P", netcluster.WithErrorHandler(func(err error) { errs <- err }))
	in := &ntInbox{}
	if _, err := a.On("n", in.handle, netcluster.WithReplay(netcluster.Last(5))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "not a durable channel") || !strings.Contains(err.Error(), `listener "n"`) {
			t.Fatalf("error handler got %v; want the listener's replay failing as not durable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error for the replay of a plain channel")
	}
	src := ctlAgent(t, h.dir, "P")
	if err := src.EmitRaw(ctlCtx(t), "n", []byte("live")); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "the live message", func() bool { return len(in.get()) == 1 })
	if m := in.get()[0]; m.Replayed || string(m.Data) != "live" {
		t.Fatalf("got %+v", m)
	}
	if _, err := a.On("n", in.handle, netcluster.WithReplay(netcluster.Last(0))); err == nil || !strings.Contains(err.Error(), "Last(0)") {
		t.Fatalf("On with Last(0): %v", err)
	}
	if _, err := a.On("n", in.handle, netcluster.WithReplay(netcluster.Since(time.Time{}))); err == nil || errors.Is(err, netcluster.ErrClosed) {
		t.Fatalf("On with Since(zero time): %v", err)
	}
}

// A WithReplay listener added while the agent is disconnected gets its
// replay on the next connection (the Replay frame is asked for again
// there, after the Listen frames).
func TestListenWithReplayWhileDisconnected(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	src := `{"nodename": "wd", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	h := ntStart(t, bbConfig(t, []string{ns.URL()}, src))
	bbConnected(t, h)
	a := ctlAgent(t, h.dir, "D")
	for i := range 10 {
		if err := a.EmitRaw(ctlCtx(t), "n", []byte("wd:"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "stored", func() bool {
		msgs, err := a.Replay(ctlCtx(t), "n", netcluster.Last(1))
		return err == nil && len(msgs) == 1 && string(msgs[0].Data) == "wd:9"
	})
	late := ctlAgent(t, h.dir, "D", netcluster.WithErrorHandler(func(err error) { t.Errorf("error handler: %v", err) }))
	h.srv.Close()
	ntWait(t, "the agent disconnected", func() bool { return late.State() != netcluster.Connected })
	var log seamLog
	if _, err := late.On("n", log.handle, netcluster.WithReplay(netcluster.Last(100))); err != nil {
		t.Fatal(err)
	}
	bus := bbConfig(t, []string{ns.URL()}, src)
	bus.SocketDir = h.dir
	srv, err := New(Config{Bus: bus, Console: &ntConsole{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	bbWait(t, "the replay on the next connection", 30*time.Second, func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.seen) == 10
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, m := range log.seen {
		if !m.replayed || m.n != i {
			t.Fatalf("message %d: %+v; want number %d, replayed", i, m, i)
		}
	}
}
