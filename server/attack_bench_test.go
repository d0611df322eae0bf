//go:build linux

package server

import (
	"context"
	"encoding/binary"
	"flag"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// 64 MiB for the process itself, which is also its memorylimit; and the
// process's CPU time per message, which a loaded machine disturbs less
// than the rate.
//
//	go test -run x -bench Attack -benchtime 200000x ./server
//	go test -run x -bench Attack/churn -benchtime 200000x ./server  # spans replacements
//	go test -run x -bench Attack/silent100 ./server -args -attackprofile /tmp/p  # /tmp/p.silent100
func BenchmarkAttack(b *testing.B) {
	const outbuffer, partial = 1 << 20, 64 << 20
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
			// They turn legacy after 2 s of silence, early in the
			// timed part: their queues are then written as envelopes.
			time.Sleep(1500 * time.Millisecond)
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
			bound := at.conns*outbuffer + partial + 64<<20
			cfg := `{"outbuffer": ` + strconv.Itoa(outbuffer) + `, "partialframes": ` + strconv.Itoa(partial) +
				`, "memorylimit": ` + strconv.Itoa(bound) + `, "channels": {"A": {}}}`
			srv, dir := ctlServer(b, cfg)
			src := ctlAgent(b, dir, "A")
			dst := ctlAgent(b, dir, "A")
			var got, target, doneAt atomic.Int64
			target.Store(-1)
			if _, err := dst.On("x", func(*netcluster.Message) {
				if got.Add(1) == target.Load() {
					doneAt.Store(time.Now().UnixNano())
				}
			}); err != nil {
				b.Fatal(err)
			}
			dst.Flush(context.Background())
			stop := make(chan struct{})
			defer close(stop)
			at.start(b, dir, stop)
			payload := strings.Repeat("p", 128)
			ctx := context.Background()
			// Warm up: the attackers' outboxes fill.
			const warm = 20000
			for range warm {
				src.EmitRaw(ctx, "x", []byte(payload))
			}
			for deadline := time.Now().Add(30 * time.Second); got.Load() < warm && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			waitQuiet(&got)
			got.Store(0)
			target.Store(int64(b.N))
			b.ResetTimer()
			stopProfile := func() {}
			if *attackProfile != "" {
				stopProfile = profileTo(b, *attackProfile+"."+at.name)
			}
			var ms0 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
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
			// Until the last message arrived; if some never did, until
			// the count stopped growing.
			elapsed := time.Since(start) - quiet
			if t := doneAt.Load(); t != 0 {
				elapsed = time.Unix(0, t).Sub(start)
			}
			cpu := cpuTime() - cpu0
			stopProfile()
			b.StopTimer()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N-int(got.Load()))/float64(b.N)*100, "%lost")
			// CPU of the whole process (server, pair, attackers) per
			// message: steadier than the rate on a loaded machine.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
			// Near its memory limit (memorylimit less an eighth) the
			// runtime collects again and again.
			b.ReportMetric(float64(ms.NumGC-ms0.NumGC), "GCs")
			b.ReportMetric(rssMiB(), "rssMiB")
			b.ReportMetric(float64(bound)/(1<<20), "boundMiB")
			ci, _ := srv.Channel("A")
			b.ReportMetric(float64(ci.FramesRefused), "framesRefused")
		})
	}
}

// attackProfile names the files of CPU profiles of BenchmarkAttack's
// timed parts, one per attack: -cpuprofile would profile the set-up too
// (filling 100 outboxes, say).
var attackProfile = flag.String("attackprofile", "", "write a CPU profile of each attack's timed part to `prefix`.<attack>")

// profileTo starts a CPU profile into the file at path and returns what
// stops it.
func profileTo(b *testing.B, path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// quiet is how long a count must stop growing for waitQuiet.
const quiet = 300 * time.Millisecond

// waitQuiet waits until n stops growing for quiet, 30 s at most.
func waitQuiet(n *atomic.Int64) {
	last, since := n.Load(), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) > quiet {
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

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
