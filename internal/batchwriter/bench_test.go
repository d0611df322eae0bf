package batchwriter

import (
	"io"
	"testing"
)

// loopQueue always has one 4 KiB batch queued, until n batches are taken.
type loopQueue struct {
	out []byte
	n   int
}

func (q *loopQueue) Take(spare []byte) ([]byte, bool) {
	if q.n == 0 {
		return nil, true
	}
	q.n--
	batch := append(q.out[:0], make([]byte, 4096)...)
	q.out = spare
	return batch, false
}

func (q *loopQueue) Wrote([]byte, int, error) {}
func (q *loopQueue) Idle()                    {}

// BenchmarkRun measures the writer's own cost per batch (Take, Write to
// io.Discard, Wrote): after the first two batches it allocates nothing.
func BenchmarkRun(b *testing.B) {
	q := &loopQueue{n: b.N}
	b.ReportAllocs()
	b.ResetTimer()
	if err := Run(io.Discard, q, nil, nil); err != nil {
		b.Fatal(err)
	}
}

// TestRunAllocatesNothing asserts that Run allocates nothing per batch:
// its two buffers are swapped, never replaced, so a Run of 1000 batches
// allocates what one of 10 does (its timer, its first buffers).
func TestRunAllocatesNothing(t *testing.T) {
	allocs := func(batches int) float64 {
		return testing.AllocsPerRun(10, func() {
			Run(io.Discard, &loopQueue{n: batches}, nil, nil)
		})
	}
	few, many := allocs(10), allocs(1000)
	if many != few {
		t.Fatalf("Run allocates %v times for 10 batches, %v for 1000: want the same", few, many)
	}
}
