package memret

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Options tune [Watch]. The zero value is valid.
type Options struct {
	// Interval is how often the heap is looked at. Default 1 s.
	Interval time.Duration
	// Floor is how much the kept heap must have grown, since its lowest
	// point after the last return, to count as a burst, or how many free
	// bytes the runtime may keep while the program is quiet. Default 64 MiB.
	Floor uint64
	// OnReturn, if set, is called after each return with the heap bytes
	// the runtime kept before and after it.
	OnReturn func(before, after uint64)
}

// The metrics Watch reads, in this order.
var names = []string{
	"/memory/classes/heap/objects:bytes", // live and not yet swept dead objects
	"/memory/classes/heap/unused:bytes",  // in spans, unused
	"/memory/classes/heap/free:bytes",    // free, not yet returned
	"/gc/heap/allocs:bytes",              // allocated in all
}

// sample is one reading: the heap the runtime keeps from the operating
// system, and the bytes allocated so far.
type sample struct{ kept, free, allocs uint64 }

func read(s []metrics.Sample) sample {
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return sample{kept: v(0) + v(1) + v(2), free: v(2), allocs: v(3)}
}

// Watch returns memory to the operating system after bursts until ctx
// ends. Every Interval it reads the heap the runtime keeps (objects, live
// or dead, and free pages not yet returned). When that has grown by at
// least Floor since its lowest point after the last return (a burst) and
// the program allocated less than 1/256 of it during each of the
// last two intervals (the burst is over), it collects twice (buffers
// that sync.Pools held survive the first) and returns every free page
// (debug.FreeOSMemory). It does the same when the free
// pages the runtime keeps (freed by later collections) reach Floor while
// the program is quiet. When a return leaves at least Floor kept (live),
// Watch collects again after 10 quiet intervals, then 20, 40, … up to
// every 320, not every interval: those later looks catch a heap that was
// about to be freed (a burst's connections still closing).
func Watch(ctx context.Context, o Options) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Floor == 0 {
		o.Floor = 64 << 20
	}
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	prev := read(s)
	low := prev.kept
	quietTicks := 0
	retry, backoff := 0, firstRetry // intervals until the next look again
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := read(s)
		if cur.allocs-prev.allocs < cur.kept/256 {
			quietTicks++
		} else {
			quietTicks = 0
		}
		prev = cur
		low = min(low, cur.kept)
		if quietTicks < 2 {
			continue
		}
		switch {
		case cur.kept >= low+o.Floor || cur.free >= o.Floor:
			backoff = firstRetry
		case retry > 0:
			if retry--; retry > 0 {
				continue
			}
		default:
			continue
		}
		// Two collections: what sync.Pools held survives the first.
		runtime.GC()
		debug.FreeOSMemory()
		prev = read(s)
		low = prev.kept
		// A heap still large may be freed soon (connections still
		// closing): look again later, less often each time.
		retry = 0
		if prev.kept >= o.Floor {
			retry, backoff = backoff, min(2*backoff, maxRetry)
		}
		if o.OnReturn != nil {
			o.OnReturn(cur.kept, prev.kept)
		}
	}
}

// After a return that left at least Floor kept, Watch looks again (while
// quiet) after firstRetry intervals, then twice as long each time, up to
// maxRetry intervals.
const (
	firstRetry = 10
	maxRetry   = 320
)
