package netcluster_test

import (
	"context"
	"testing"

	"github.com/netcluster/netcluster"
)

// BenchmarkRequest measures one request at a time, 128 bytes, from one
// agent to a queue group of two answering agents through the server over
// Unix sockets (S11 in one process): ns/op is the round trip.
func BenchmarkRequest(b *testing.B) {
	_, dir := startServer(b, nil)
	for range 2 {
		r := connect(b, dir, "A")
		if _, err := r.OnQueue("req", "g", func(m *netcluster.Message) {
			m.ReplyRaw(context.Background(), m.Data)
		}); err != nil {
			b.Fatal(err)
		}
		if err := r.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	a := connect(b, dir, "A")
	data := make([]byte, 128)
	ctx := context.Background()
	for range 100 { // warm up
		if _, err := a.RequestRaw(ctx, "req", data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.RequestRaw(ctx, "req", data); err != nil {
			b.Fatal(err)
		}
	}
}
