package memret

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// kept returns the heap the runtime keeps from the operating system. The
// tests check it rather than the resident set, which under the race
// detector also holds shadow memory that no collection returns.
func kept() uint64 {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	return read(s).kept
}

// rss returns the process's resident set size in bytes, for the logs.
func rss(t testing.TB) uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * uint64(os.Getpagesize())
}

// burst allocates and touches n bytes in 64 KiB buffers, as a burst of
// queued messages would, and lets them go.
func burst(n int) {
	bufs := make([][]byte, 0, n/(64<<10))
	for range n / (64 << 10) {
		b := make([]byte, 64<<10)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		bufs = append(bufs, b)
	}
	sink = bufs
	sink = nil
}

var sink [][]byte

const mib = 1 << 20

// After a burst of 256 MiB, Watch gives the heap back to the system. Without it the memory stays resident (see TestWithoutWatch).
func TestWatchReturnsBurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	returns := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		Watch(ctx, Options{Interval: 50 * time.Millisecond, OnReturn: func(_, _ uint64) {
			mu.Lock()
			returns++
			mu.Unlock()
		}})
	}()
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // Watch has its first reading

	before, rssBefore := kept(), rss(t)
	burst(256 * mib)
	peak, rssPeak := kept(), rss(t)
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for kept() > before+32*mib {
		if time.Now().After(deadline) {
			t.Fatalf("heap kept %d MiB 10 s after a burst (%d MiB before it, %d MiB at its peak)", kept()/mib, before/mib, peak/mib)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("heap kept %d MiB before, %d MiB at the peak, %d MiB %v after it (RSS %d, %d, %d MiB)",
		before/mib, peak/mib, kept()/mib, time.Since(start).Round(10*time.Millisecond), rssBefore/mib, rssPeak/mib, rss(t)/mib)
	// Quiet from now on: no further returns.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if returns < 1 || returns > 2 {
		t.Errorf("Watch returned memory %d times for one burst, want once (twice if the burst looked quiet midway)", returns)
	}
}

// A burst that becomes garbage only after Watch first looked (its
// connections were still closing) is returned by a later look.
func TestWatchReturnsLateGarbage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	returned := make(chan struct{}, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		Watch(ctx, Options{Interval: 20 * time.Millisecond, OnReturn: func(_, _ uint64) { returned <- struct{}{} }})
	}()
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(50 * time.Millisecond)

	before := kept()
	for range 4096 {
		sink = append(sink, make([]byte, 64<<10))
	}
	select {
	case <-returned: // a look that could free nothing
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not look at a quiet heap that grew by 256 MiB")
	}
	if k := kept(); k < before+200*mib {
		t.Fatalf("heap kept %d MiB while 256 MiB are live", k/mib)
	}
	sink = nil // the burst's buffers go now
	deadline := time.Now().Add(10 * time.Second)
	for kept() > before+32*mib {
		if time.Now().After(deadline) {
			t.Fatalf("heap kept %d MiB 10 s after the late garbage (%d MiB before the burst)", kept()/mib, before/mib)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without Watch, the same burst stays resident: the runtime does not
// collect a program that has gone quiet. This documents what Watch is for;
// if a runtime ever returns such memory by itself within 2 s, it fails,
// and Watch may go.
func TestWithoutWatch(t *testing.T) {
	before := kept()
	burst(256 * mib)
	peak := kept()
	time.Sleep(2 * time.Second)
	now := kept()
	if now+32*mib < peak {
		t.Errorf("without Watch the kept heap went from %d MiB (peak) to %d MiB by itself", peak/mib, now/mib)
	}
	t.Logf("without Watch: heap kept %d MiB before the burst, %d MiB at the peak, %d MiB 2 s later (RSS %d MiB)", before/mib, peak/mib, now/mib, rss(t)/mib)
	debug.FreeOSMemory() // leave the process as it was
}
