package netcluster_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/wire"
)

// BenchmarkReceiveAgent is the subscriber agent of S1 alone: a fake
// server writes numbered 128-byte messages (SeqMsg frames, 64 KiB at a
// time) to one agent over a Unix socket, whose listener counts them. It
// reports the process's CPU time per message (cpu-ns/msg: the agent's
// reader and handler goroutines, the runtime's garbage collection, and
// the fake server's writes, some 1 % of it), where the platform tells.
func BenchmarkReceiveAgent(b *testing.B) { receiveAgent(b) }

// BenchmarkReceiveAgentBorrowed is BenchmarkReceiveAgent with
// WithBorrowedMessages: the slabs are reused (borrow.go).
func BenchmarkReceiveAgentBorrowed(b *testing.B) { receiveAgent(b, netcluster.WithBorrowedMessages()) }

func receiveAgent(b *testing.B, opts ...netcluster.Option) {
	dir := b.TempDir()
	sock := filepath.Join(dir, "netcluster-A")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	m := &wire.Msg{Channel: "bench", Agent: "pub-1", Event: "bench", Data: make([]byte, 128)}
	const mark = 0x0102030405060708
	frame := wire.AppendSeqMsg(nil, 7, mark, m)
	at := bytes.Index(frame, binary.BigEndian.AppendUint64(nil, mark))
	var chunk []byte
	var seqAt []int
	for len(chunk)+len(frame) <= 64<<10 {
		seqAt = append(seqAt, len(chunk)+at)
		chunk = append(chunk, frame...)
	}
	start, served := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, rd, err := fakeWelcome(nc)
		if err != nil {
			return
		}
		go func() { // Listen, Ping (Flush): Pong
			for {
				f, err := rd.Next()
				if err != nil {
					return
				}
				if f.Type == wire.TypePing {
					tok, _ := wire.ParseU64(f.Payload)
					nc.Write(wire.AppendU64(nil, wire.TypePong, tok))
				}
			}
		}()
		<-start
		seq := uint64(0)
		for {
			for _, o := range seqAt {
				seq++
				binary.BigEndian.PutUint64(chunk[o:], seq)
			}
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}()
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	a, err := netcluster.Connect(ctxT(b), "A", append([]netcluster.Option{netcluster.WithSocketDir(dir), netcluster.WithoutReconnect()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	a.On("bench", func(*netcluster.Message) {
		if got.Add(1) == n {
			close(done)
		}
	})
	if err := a.Flush(ctxT(b)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(128)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	close(start)
	<-done
	b.StopTimer()
	if cpu := cpuTime(); cpu > 0 {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/msg")
	}
	a.Close(ctxT(b))
	ln.Close()
	<-served
}
