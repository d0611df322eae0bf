package memconn

import (
	"io"
	"sync"
	"testing"
)

// BenchmarkWrite128 streams 128-byte Writes to a concurrent reader.
func BenchmarkWrite128(b *testing.B) {
	c1, c2 := Pipe("bench")
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(io.Discard, struct{ io.Reader }{c2}) })
	msg := make([]byte, 128)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c1.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	c1.Close()
	wg.Wait()
	c2.Close()
}

// BenchmarkPingPong128 sends 128 bytes and waits for them to come back:
// the latency of a request and its response.
func BenchmarkPingPong128(b *testing.B) {
	c1, c2 := Pipe("bench")
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(c2, c2) })
	msg := make([]byte, 128)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c1.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c1, msg); err != nil {
			b.Fatal(err)
		}
	}
	c1.Close()
	wg.Wait()
	c2.Close()
}
