//go:build linux

package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// gapBenchN is the receivers of the StreamEnd benchmarks:
// NETCLUSTER_GAPS_N, 1000 by default (the review measured 5000).
func gapBenchN() int {
	if n, err := strconv.Atoi(os.Getenv("NETCLUSTER_GAPS_N")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// gapReceivers connects n agents of version 4 to channel A that read
// everything and emit nothing; it returns the bytes they read so far.
func gapReceivers(b *testing.B, s *Server, n int) *atomic.Int64 {
	var read atomic.Int64
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := range n {
		nc, err := s.Dial(context.Background(), "A")
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, nc)
		h := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionGaps, AgentID: fmt.Sprintf("r%d", i), Channel: "A"})...)
		nc.Write(wire.AppendStream(h, uint32(i), 0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				k, err := nc.Read(buf)
				read.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	b.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	})
	waitUntilFor(b, 60*time.Second, "receivers joined", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == n })
	return &read
}

func gapBenchServer(b *testing.B, n int) *Server {
	s := lifecycleServer(b, func(bus *config.Config) {
		bus.MaxChannelConnections = n + 100
		bus.MaxUIDConnections = n + 100
		bus.MaxConnections = n + 100
	})
	s.started = time.Now().Add(-time.Minute) // past the restart grace
	return s
}

// BenchmarkStreamEndChurn: what one agent that connects (version 4,
// Stream), then closes, in a loop, costs the server and the receivers of
// its channel, per cycle (cpu-ns/cycle: the process's CPU time, the
// receivers' reads included). announced-0 numbered nothing (no StreamEnd
// is due); announced-1 claims one number (a StreamEnd to each receiver,
// within the uid's budget).
func BenchmarkStreamEndChurn(b *testing.B) {
	n := gapBenchN()
	for _, announced := range []uint64{0, 1} {
		b.Run(fmt.Sprintf("receivers=%d/announced-%d", n, announced), func(b *testing.B) {
			s := gapBenchServer(b, n)
			read := gapReceivers(b, s, n)
			time.Sleep(200 * time.Millisecond)
			base := read.Load()
			endLen := int64(len(wire.AppendStreamEnd(nil, wire.StreamEnd{StreamRef: wire.StreamRef{Channel: "A", Agent: "hostile"}})))
			c0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				nc, err := s.Dial(context.Background(), "A")
				if err != nil {
					b.Fatal(err)
				}
				h := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionGaps, AgentID: "hostile", Channel: "A"})...)
				nc.Write(wire.AppendStream(h, uint32(i), announced))
				rd := wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)
				rd.Next() // Welcome
				nc.Close()
				waitUntilFor(b, 60*time.Second, "hostile gone", func() bool { _, ok := s.Agent("A", "hostile"); return !ok })
			}
			waitUntilFor(b, 120*time.Second, "StreamEnds read", func() bool {
				ci, _ := s.Channel("A")
				return read.Load()-base >= int64(ci.StreamEnds)*endLen
			})
			b.StopTimer()
			ci, _ := s.Channel("A")
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/cycle")
			b.ReportMetric(float64(ci.StreamEnds)/float64(b.N), "streamends/cycle")
			b.ReportMetric(float64(ci.StreamEndsDropped)/float64(b.N), "unsent/cycle")
		})
	}
}

// BenchmarkMassDisconnect: n agents of version 4 that listen and never
// emit disconnect together (a deployment restarting them); cpu-ns/op is
// the CPU time the n disconnections cost the process.
func BenchmarkMassDisconnect(b *testing.B) {
	n := gapBenchN()
	b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
		var cpu time.Duration
		var ends uint64
		for range b.N {
			b.StopTimer()
			s := gapBenchServer(b, n)
			var wg sync.WaitGroup
			conns := make([]net.Conn, n)
			for i := range conns {
				nc, err := s.Dial(context.Background(), "A")
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = nc
				h := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionGaps, AgentID: fmt.Sprintf("r%d", i), Channel: "A"})...)
				nc.Write(wire.AppendStream(h, uint32(i), 0))
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 4096)
					for {
						if _, err := nc.Read(buf); err != nil {
							return
						}
					}
				}()
			}
			waitUntilFor(b, 60*time.Second, "joined", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == n })
			b.StartTimer()
			c0 := cpuTime()
			for _, nc := range conns {
				nc.Close()
			}
			waitUntilFor(b, 120*time.Second, "all gone", func() bool { ci, _ := s.Channel("A"); return len(ci.Agents) == 0 })
			wg.Wait()
			cpu += cpuTime() - c0
			ci, _ := s.Channel("A")
			ends += ci.StreamEnds
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(ends)/float64(b.N), "streamends/op")
	})
}
