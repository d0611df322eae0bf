package netcluster_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
)

func TestOnceOffAndOrder(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	ctx := ctxT(t)

	var calls []string
	done := make(chan struct{}, 16)
	rec := func(name string) netcluster.Handler {
		return func(m *netcluster.Message) {
			calls = append(calls, name+":"+m.Event) // handlers run one at a time
			done <- struct{}{}
		}
	}
	first, _ := a.On("e", rec("first"))
	once, _ := a.Once("e|f", rec("once"))
	second, _ := a.On("e", rec("second"))
	third, _ := a.On("e", rec("third"))
	end, _ := a.On("end", func(*netcluster.Message) { done <- struct{}{} })
	_ = end

	// Off removes exactly that listener: not the later ones under the
	// same pattern (the original's bug).
	if !second.Off() {
		t.Fatal("Off returned false")
	}
	if second.Off() {
		t.Fatal("second Off returned true")
	}
	for _, ev := range []string{"e", "f", "e", "end"} {
		if err := a.Emit(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 { // first:e once:e third:e first:e third:e end
		<-done
	}
	want := []string{"first:e", "once:e", "third:e", "first:e", "third:e"}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("calls %v, want %v", calls, want)
		}
	}
	if once.Off() {
		t.Error("Off of a fired Once listener returned true")
	}
	if !first.Off() || !third.Off() {
		t.Error("Off of live listeners returned false")
	}
}

func TestInvalidPatterns(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	for _, p := range []string{"a(", "[z-a]", "*", ""} {
		if _, err := a.On(p, func(*netcluster.Message) {}); err == nil {
			t.Errorf("On(%q) succeeded", p)
		}
	}
	if _, err := a.On("ok", nil); err == nil {
		t.Error("nil handler accepted")
	}
}

// Listeners come and go while another agent emits: the receiver never
// sees a message for a pattern after Off returned and Flush passed, and
// never misses one while it listens.
func TestListenersChangeWhileFlowing(t *testing.T) {
	_, dir := startServer(t, nil)
	src := connect(t, dir, "A")
	dst := connect(t, dir, "A")
	ctx := ctxT(t)

	stop := make(chan struct{})
	emitted := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				emitted <- nil
				return
			default:
			}
			if err := src.Emit(ctx, "tick", i); err != nil {
				emitted <- err
				return
			}
			if i%50 == 0 { // keep the flow steady, not a flood
				if err := src.Flush(ctx); err != nil {
					emitted <- err
					return
				}
			}
		}
	}()

	for round := range 20 {
		var got atomic.Int64
		var afterOff atomic.Bool
		var late atomic.Int64
		l, err := dst.On("tick", func(*netcluster.Message) {
			if afterOff.Load() {
				late.Add(1)
			}
			got.Add(1)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// The server has the listener: ticks must arrive.
		marker := newRecorder()
		ml, _ := dst.Once("marker", marker.handle)
		if err := dst.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		src.Emit(ctx, "marker", round)
		marker.waitN(t, 1)
		ml.Off()
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no tick while listening", round)
			}
			time.Sleep(time.Millisecond)
		}
		l.Off()
		afterOff.Store(true)
		if late.Load() != 0 {
			t.Fatalf("round %d: handler ran %d times after Off", round, late.Load())
		}
	}
	close(stop)
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
}

// The dispatcher remembers its last match (router.Memo): a listener added
// after a stream of one event has been matched gets the next message of
// it, and one removed does not.
func TestListenerAddedAfterRepeatedMatches(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	ctx := ctxT(t)
	got := make(chan string, 64)
	rec := func(name string) netcluster.Handler {
		return func(m *netcluster.Message) { got <- name + ":" + string(m.Data) }
	}
	first, _ := a.On("e", rec("first"))
	emit := func(data string) {
		t.Helper()
		if err := a.EmitRaw(ctx, "e", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case g := <-got:
				if g != w {
					t.Fatalf("handled %s, want %s", g, w)
				}
			case <-ctx.Done():
				t.Fatalf("no %s", w)
			}
		}
	}
	for i := range 3 {
		emit(fmt.Sprint(i))
		expect("first:" + fmt.Sprint(i))
	}
	second, _ := a.On("e", rec("second"))
	emit("3")
	expect("first:3", "second:3")
	first.Off()
	emit("4")
	emit("5")
	expect("second:4", "second:5")
	second.Off()
	third, _ := a.On("e", rec("third"))
	defer third.Off()
	emit("6")
	expect("third:6")
	select {
	case g := <-got:
		t.Fatalf("handled %s after the last", g)
	default:
	}
}
