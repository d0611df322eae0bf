package server

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// TestBackboneDurableReload reloads host 2 with a changed backbone
// setting while it delivers a durable channel to a listener that reads
// slowly (so that the consumer's handler waits for it, as the reload
// comes): the old Backbone's consumers stop before the new one's start,
// so the listener gets every message once and in order, and none waits
// gapWait (9 s). On 7e749dc it failed 4 runs of 4: the old one's Close
// cut off its last handler's acknowledgement, and the new one delivered
// that envelope's 10 to 16 messages again, 2.7 s later (ackWait). With
// that mended but the new one consuming beside the old (the order of
// 7e749dc), 4 of 4 failed too: the new one counted the old one's
// in-flight messages as to come back, the old one acknowledged one of
// them instead, and the next ones waited out gapWait (a gap of 6.0 s).
func TestBackboneDurableReload(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	cfg := func(name string) string {
		return `{"nodename": "` + name + `", "outbuffer": 65536, "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("rl1")))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg("rl2")))
	bbConnected(t, h1, h2)
	slow := ctlDialRaw(t, h2.dir, "D", "slow")
	slow.write(wire.AppendListen(nil, wire.TypeListen, "n"))
	slow.sync(1)
	ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })

	const n = 1500
	var (
		mu      sync.Mutex
		got     []int
		at      []time.Time
		dropped uint64
		readErr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			slow.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			f, err := slow.rd.Next()
			if err != nil {
				mu.Lock()
				readErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			switch f.Type {
			case wire.TypeDropped:
				k, _ := wire.ParseU64(f.Payload)
				dropped += k
			case wire.TypeMsg:
				if v, err := wire.ParseMsg(f.Payload); err == nil && len(v.Data) >= 4 {
					got = append(got, int(binary.BigEndian.Uint32(v.Data)))
					at = append(at, time.Now())
				}
			}
			k := len(got)
			mu.Unlock()
			if k >= n {
				return
			}
			if k == n/3 {
				// The reload comes now: the old consumer's handler
				// waits for room meanwhile.
				time.Sleep(300 * time.Millisecond)
			} else if k%32 == 0 {
				time.Sleep(time.Millisecond) // slower than NATS delivers
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	changed := bbConfig(t, []string{ns.URL()}, cfg("rl2"))
	changed.NATS.Name = "reloaded"
	changed.SocketDir = h2.dir
	out := ctlAgent(t, h1.dir, "D")
	ctx := ctlCtx(t)
	emit := func(from, to int) error {
		data := make([]byte, 4000)
		for i := from; i < to; i++ {
			binary.BigEndian.PutUint32(data, uint32(i))
			if err := out.EmitRaw(ctx, "n", data); err != nil {
				return err
			}
			if i%10 == 9 {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	}
	if err := emit(0, n/2); err != nil {
		t.Fatal(err)
	}
	bbWait(t, "a third", 30*time.Second, func() bool { return count() >= n/3 })
	// The rest comes while and after host 2 reloads.
	emitted := make(chan error, 1)
	go func() { emitted <- emit(n/2, n) }()
	reloadAt := count()
	start := time.Now()
	if err := h2.srv.Reload(changed); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		slow.nc.Close()
		<-done
	}
	if err := <-emitted; err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	checkExactlyInOrder(t, "across the reload", got, n)
	var gap time.Duration
	gapAt := 0
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d > gap {
			gap, gapAt = d, i
		}
	}
	if gap >= 5*time.Second {
		t.Errorf("a gap of %v before the %dth message", gap.Round(time.Millisecond), gapAt)
	}
	t.Logf("reload at %d took %v; longest gap %v before the %dth message; %d dropped; read error %v",
		reloadAt, took.Round(time.Millisecond), gap.Round(time.Millisecond), gapAt, dropped, readErr)
	if t.Failed() {
		t.Logf("host 2: %+v", h2.srv.Stats().Backbone)
	}
}
