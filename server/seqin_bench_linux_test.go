package server

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// BenchmarkSeqMsgIn is the server's side of S6 of the bench harness: an
// agent (raw, on a Unix socket) sends numbered 128-byte messages, 64 KiB
// of frames at a time, that no other agent listens to; the server reads,
// routes (to no one), counts and acknowledges each. It reports the
// process's CPU time per message (cpu-ns/msg: the server's reader and
// acker, and the raw agent's writes and ack reads, a few per cent of
// it), steadier than the rate on a shared machine.
func BenchmarkSeqMsgIn(b *testing.B) {
	_, dir := ctlServer(b, `{"startcontrol": false, "channels": {"A": {}}}`)
	r := qDialRaw(b, dir, "A", "s", wire.VersionAcks)
	const mark = 0x0102030405060708
	frame := wire.AppendSeqMsg(nil, 1, mark, &wire.Msg{Channel: "A", Agent: "s", Event: "bench", Data: make([]byte, 128)})
	at := bytes.Index(frame, binary.BigEndian.AppendUint64(nil, mark))
	var chunk []byte
	var seqAt []int
	for len(chunk)+len(frame) <= 64<<10 {
		seqAt = append(seqAt, len(chunk)+at)
		chunk = append(chunk, frame...)
	}
	var acked atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := r.rd.Next()
			if err != nil {
				return
			}
			if f.Type == wire.TypeAck {
				n, _ := wire.ParseU64(f.Payload)
				acked.Store(n)
			}
		}
	}()
	seq := uint64(0)
	b.SetBytes(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for seq < uint64(b.N) {
		for _, o := range seqAt {
			seq++
			binary.BigEndian.PutUint64(chunk[o:], seq)
		}
		if _, err := r.nc.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	for acked.Load() < seq {
		select {
		case <-done:
			b.Fatalf("connection ended with %d of %d acknowledged", acked.Load(), seq)
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(seq), "cpu-ns/msg")
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "msgs/s")
	r.nc.Close()
	<-done
}
