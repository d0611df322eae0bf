package netcluster_test

import (
	"context"
	"testing"
)

// BenchmarkEmitSent measures the publisher's side alone: Emit of 128-byte
// raw messages through a server over a Unix socket, to no listener (the
// server routes each to nobody and acknowledges it), until the server has
// them all.
func BenchmarkEmitSent(b *testing.B) {
	_, dir := startServer(b, nil)
	pub := connect(b, dir, "A")
	ctx := context.Background()
	data := make([]byte, 128)
	b.SetBytes(128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := pub.EmitRaw(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
