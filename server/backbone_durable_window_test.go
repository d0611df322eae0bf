package server

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
)

// TestBackboneDurableLeaveAfterCheck: host 2's only listener on a durable
// channel leaves after the consumer has asked whether anyone listens
// (yes) and before it routes the envelope (a hook closes the listener
// there and waits for the leave, as a leave in those microseconds is on
// a loaded machine). The envelope reached no one and must wait in
// JetStream for the next listener, which gets every message stored after
// the first ten, in order, none twice. The consumer used to acknowledge
// it: the next listener got none of its messages.
func TestBackboneDurableLeaveAfterCheck(t *testing.T) {
	t.Parallel()
	const first, n = 10, 30
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("w1")))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("w2")))
	bbConnected(t, h1, h2)
	a, in1 := ntListen(t, h2, "D", "n")
	ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })

	em := ctlAgent(t, h1.dir, "D")
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			if err := em.EmitRaw(ctlCtx(t), "n", []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(0, first)
	bbWait(t, "the first messages at the listener", 30*time.Second, func() bool { return len(in1.get()) >= first })
	checkExactlyInOrder(t, "before the leave", numbers(t, in1), first)

	bb := h2.srv.bb.Load()
	var once sync.Once
	hooked := make(chan error, 1)
	hook := func(channel string) {
		once.Do(func() {
			err := a.Close(ctlCtx(t))
			for end := time.Now().Add(10 * time.Second); err == nil && bb.listens(channel); {
				if time.Now().After(end) {
					err = errStr("the leave did not reach host 2 in 10 s")
				}
				time.Sleep(time.Millisecond)
			}
			hooked <- err
		})
	}
	bb.listenHook.Store(&hook)
	t.Cleanup(func() { bb.listenHook.Store(nil) })

	emit(first, n)
	select {
	case err := <-hooked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("host 2's consumer did not check for a listener after the first messages")
	}
	bb.listenHook.Store(nil)
	bbWait(t, "the rest stored", 30*time.Second, func() bool { return h1.srv.Stats().Backbone.MsgsOut >= n })
	ntWait(t, "host 2 no longer consuming, its listener gone", func() bool {
		return len(h2.srv.Stats().Backbone.Durable) == 0
	})

	_, in := ntListen(t, h2, "D", "n")
	end := time.Now().Add(15 * time.Second)
	for time.Now().Before(end) && len(in.get()) < n-first {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would come now
	got := numbers(t, in)
	ok := len(got) == n-first
	for i, v := range got {
		ok = ok && v == first+i
	}
	if !ok {
		st := h2.srv.Stats().Backbone
		t.Fatalf("the next listener got %d of the %d stored after the first %d (want %d..%d once each, in order): %v; host 2: routed %d, in %d, duplicates %d, lost %d",
			len(got), n-first, first, first, n-1, got, st.Routed, st.MsgsIn, st.Duplicates, st.Lost)
	}
}

// errStr is an error that is its text.
type errStr string

func (e errStr) Error() string { return string(e) }
