package server

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// The attacks of issue 10 (items 5 and 6) against a healthy pair: a sender
// and a receiver of 128-byte messages on channel A. Each sub-benchmark
// reports the pair's messages per second (compare with "alone"), the heap
// in use and the process's RSS under the attack, and the bound the
// configuration sets for it: connections × outbuffer + partialframes, plus
// 64 MiB for the process itself.
//
//	go test -run x -bench Attack -benchtime 20000x ./server
//	go test -run x -bench Attack/churn -benchtime 200000x ./server  # spans replacements
func BenchmarkAttack(b *testing.B) {
	const outbuffer, partial = 1 << 20, 64 << 20
	cfg := `{"outbuffer": ` + strconv.Itoa(outbuffer) + `, "partialframes": ` + strconv.Itoa(partial) + `, "channels": {"A": {}}}`
	attacks := []struct {
		name  string
		conns int
		start func(b *testing.B, dir string, stop <-chan struct{})
	}{
		{"alone", 0, func(*testing.B, string, <-chan struct{}) {}},
		{"nonreaders100", 100, func(b *testing.B, dir string, _ <-chan struct{}) {
			for i := range 100 {
				nonReader(b, dir, "nr"+strconv.Itoa(i))
			}
		}},
		{"silent100", 100, func(b *testing.B, dir string, _ <-chan struct{}) {
			for range 100 {
				rawConn(b, dir)
			}
		}},
		{"churn50every5s", 50, func(b *testing.B, dir string, stop <-chan struct{}) {
			conns := make([]net.Conn, 50)
			for i := range conns {
				conns[i] = nonReader(b, dir, "c"+strconv.Itoa(i))
			}
			go func() {
				for gen := 1; ; gen++ {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Second):
					}
					for i, nc := range conns {
						nc.Close()
						conns[i] = nonReader(b, dir, "c"+strconv.Itoa(gen)+"-"+strconv.Itoa(i))
					}
				}
			}()
		}},
		{"partial20x16MiB", 20, func(b *testing.B, dir string, _ <-chan struct{}) {
			body := make([]byte, 16<<20-64) // within maxframe
			var wg sync.WaitGroup
			for i := range 20 {
				nc := rawConn(b, dir)
				hello := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: "p" + strconv.Itoa(i), Channel: "A"})...)
				hello = binary.BigEndian.AppendUint32(hello, uint32(len(body)+1))
				hello = append(hello, wire.TypeMsg)
				nc.Write(hello)
				wg.Add(1)
				go func() { // all of the frame but its last byte, then nothing
					defer wg.Done()
					nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
					nc.Write(body[:len(body)-1])
				}()
			}
			wg.Wait()
		}},
	}
	for _, at := range attacks {
		b.Run(at.name, func(b *testing.B) {
			srv, dir := ctlServer(b, cfg)
			src := ctlAgent(b, dir, "A")
			dst := ctlAgent(b, dir, "A")
			var got atomic.Int64
			if _, err := dst.On("x", func(*netcluster.Message) { got.Add(1) }); err != nil {
				b.Fatal(err)
			}
			dst.Flush(context.Background())
			stop := make(chan struct{})
			defer close(stop)
			at.start(b, dir, stop)
			payload := strings.Repeat("p", 128)
			ctx := context.Background()
			// Warm up: the attackers' outboxes fill.
			for range 20000 {
				src.EmitRaw(ctx, "x", []byte(payload))
			}
			waitQuiet(&got)
			got.Store(0)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				src.EmitRaw(ctx, "x", []byte(payload))
				if i%1000 == 999 {
					for got.Load() < int64(i-20000) { // a bounded window
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			waitQuiet(&got)
			elapsed := time.Since(start)
			b.StopTimer()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N-int(got.Load()))/float64(b.N)*100, "%lost")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
			b.ReportMetric(rssMiB(), "rssMiB")
			b.ReportMetric(float64(at.conns*outbuffer+partial+64<<20)/(1<<20), "boundMiB")
			ci, _ := srv.Channel("A")
			b.ReportMetric(float64(ci.FramesRefused), "framesRefused")
		})
	}
}

// waitQuiet waits until n stops growing for 300 ms, 30 s at most.
func waitQuiet(n *atomic.Int64) {
	last, since := n.Load(), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			return
		}
	}
}

// rawConn opens a connection to channel A that does nothing.
func rawConn(b *testing.B, dir string) net.Conn {
	nc, err := transport.Dial(context.Background(), transport.SocketPath(dir, "A"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return nc
}

// nonReader connects a native agent that listens to everything and never
// reads.
func nonReader(b *testing.B, dir, id string) net.Conn {
	nc := rawConn(b, dir)
	msg := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.Version, AgentID: id, Channel: "A"})...)
	msg = wire.AppendListen(msg, wire.TypeListen, ".*")
	nc.Write(msg)
	return nc
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return -1
}
