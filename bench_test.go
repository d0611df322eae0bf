package netcluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/server"
)

// inProcess starts an embedded server reachable only in memory and returns
// an option that connects agents to it; both end with the benchmark.
func inProcess(b *testing.B) netcluster.Option {
	srv, err := server.New(server.Config{NoListen: true})
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
// delivered in memory.
func BenchmarkEmitLocal(b *testing.B) {
	a := connect(b, "", "A", inProcess(b))
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
// dropped. It reports the received rate and the share dropped.
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
	for range b.N {
		if err := pub.EmitRaw(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(100*float64(d.n.Load())/float64(b.N), "%dropped")
}
