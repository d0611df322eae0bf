package netcluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

// inProcess starts an embedded server reachable only in memory and returns
// an option that connects agents to it; both end with the benchmark.
func inProcess(b testing.TB) netcluster.Option {
	return inProcessBus(b, nil)
}

// inProcessBus is inProcess on the bus configuration bus (the default
// configuration if nil).
func inProcessBus(b testing.TB, bus *config.Config) netcluster.Option {
	srv, err := server.New(server.Config{Bus: bus, NoListen: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return netcluster.WithDialer(srv.Dial)
}

// BenchmarkEmitLocal measures Emit to the emitting agent's own listener,
// delivered in memory, while the embedded server routes each message to
// no other agent: S6 of the bench harness. cpu-ns/msg is the process's
// CPU time per message (the agent's goroutines, the server's, the GC's),
// where the platform tells; it is steadier than the rate on a shared
// machine.
func BenchmarkEmitLocal(b *testing.B) {
	a := connect(b, "", "A", inProcess(b))
	benchDeliver(b, a, a)
}

// BenchmarkEmitLocalAlone is BenchmarkEmitLocal on the bench harness's
// configuration (bench/internal/harness BusConfig): channel A alone,
// propagating nowhere, no control agent. The server reads each message
// and routes it to no one, as in S6.
func BenchmarkEmitLocalAlone(b *testing.B) {
	bus := config.New()
	bus.StartControl = false
	bus.Channels["A"] = config.NewChannel()
	a := connect(b, "", "A", inProcessBus(b, bus))
	benchDeliver(b, a, a)
}

// BenchmarkPubSub128 measures one publisher to one subscriber through the
// server over Unix sockets, 128-byte messages.
func BenchmarkPubSub128(b *testing.B) {
	_, dir := startServer(b, nil)
	pub := connect(b, dir, "A")
	d := &drops{}
	sub := connect(b, dir, "A", netcluster.WithErrorHandler(d.handle))
	benchDeliverDrops(b, pub, sub, d)
}

// BenchmarkPubSub128InProcess is BenchmarkPubSub128 through the in-memory
// connection of an embedded server.
func BenchmarkPubSub128InProcess(b *testing.B) {
	dial := inProcess(b)
	pub := connect(b, "", "A", dial)
	d := &drops{}
	sub := connect(b, "", "A", dial, netcluster.WithErrorHandler(d.handle))
	benchDeliverDrops(b, pub, sub, d)
}

// drops counts the messages the server reports dropped for a subscriber
// slower than its publisher: the server never slows a publisher down for
// one subscriber.
type drops struct {
	n    atomic.Int64
	poke func()
}

func (d *drops) handle(err error) {
	var de *netcluster.DroppedError
	if errors.As(err, &de) {
		d.n.Add(int64(de.Count))
		if d.poke != nil {
			d.poke()
		}
	}
}

func benchDeliver(b *testing.B, pub, sub *netcluster.Agent) {
	benchDeliverDrops(b, pub, sub, &drops{})
}

// benchDeliverDrops emits b.N 128-byte raw messages from pub and waits
// until sub's listener has them all, or the server has reported the rest
// dropped. It reports the received rate, the share dropped and the
// process's CPU time per message.
func benchDeliverDrops(b *testing.B, pub, sub *netcluster.Agent, d *drops) {
	ctx := context.Background()
	var got atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	n := int64(b.N)
	check := func() {
		if got.Load()+d.n.Load() >= n {
			once.Do(func() { close(done) })
		}
	}
	d.poke = check
	sub.On("bench", func(*netcluster.Message) {
		got.Add(1)
		check()
	})
	if err := sub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 128)
	b.SetBytes(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		if err := pub.EmitRaw(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if cpu := cpuTime(); cpu > 0 {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/msg")
	}
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(100*float64(d.n.Load())/float64(b.N), "%dropped")
}
