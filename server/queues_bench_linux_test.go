//go:build linux

package server

import (
	"testing"
	"time"
)

// BenchmarkQueueRoute is the server's whole path for one 128-byte message
// from a version 3 agent to one of the 4 members of a queue group (S12):
// frame reader, origin check, group match, pick, the QueueMsg into the
// member's outbox (written by its writer to a sink). cpu-ns/op is the
// process's CPU time per message, the writers' included: steadier than
// ns/op on a shared machine.
func BenchmarkQueueRoute(b *testing.B) {
	src, _ := queueSetup(b, 4)
	b.ReportAllocs()
	b.SetBytes(128)
	cpu0 := cpuTime()
	for b.Loop() {
		readOne(b, src)
	}
	b.ReportMetric(float64((cpuTime()-cpu0)/time.Nanosecond)/float64(b.N), "cpu-ns/op")
}
