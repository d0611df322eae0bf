//go:build linux

package netbus

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUDPBatch measures the UDP transport's batch paths over
// 127.0.0.1: WriteBatch of up to writeChunk datagrams of one size (as the
// packer makes them: 1,400 bytes hold nine 128-byte messages, 1,092 a
// quarter of a 4 KiB one) and ReadBatch on the receiver, with and without
// offload (GSO/GRO). An op is one datagram sent and received; allocations
// count both sides. The writer keeps at most 4,096 datagrams in flight,
// so the receiver's socket does not overflow.
func BenchmarkUDPBatch(b *testing.B) {
	for _, off := range []bool{false, true} {
		for _, size := range []int{1400, 1092} {
			b.Run(fmt.Sprintf("offload=%v/%dB", !off, size), func(b *testing.B) {
				tx, rx := pair(b, off)
				var got atomic.Int64
				done := make(chan struct{})
				go func() {
					defer close(done)
					ps := make([]Packet, readBatch)
					buf := make([]byte, readBatch*9000)
					for {
						for i := range ps {
							ps[i].Data = buf[i*9000 : (i+1)*9000]
						}
						n, err := rx.ReadBatch(ps)
						if err != nil {
							return
						}
						got.Add(int64(n))
					}
				}()
				ps := make([]Packet, writeChunk)
				for i := range ps {
					ps[i].Data = make([]byte, size)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for sent := 0; sent < b.N; {
					for int64(sent)-got.Load() > 4096 {
						time.Sleep(20 * time.Microsecond)
					}
					n := min(len(ps), b.N-sent)
					if err := tx.WriteBatch(ps[:n]); err != nil {
						b.Fatal(err)
					}
					sent += n
				}
				for last, at := got.Load(), time.Now(); got.Load() < int64(b.N) && time.Since(at) < time.Second; {
					if g := got.Load(); g != last {
						last, at = g, time.Now()
					}
					time.Sleep(50 * time.Microsecond)
				}
				b.StopTimer()
				b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "datagrams/s")
				b.ReportMetric(float64(int64(b.N)-got.Load()), "lost")
				rx.Close()
				<-done
			})
		}
	}
}
