package metrics

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// The Go runtime's families, with the names, help and types of
// client_golang's Go collector (dashboards plot them). The memory ones
// are read with runtime/metrics, as client_golang did since 1.12:
// runtime.ReadMemStats stops the world.

var (
	goGoroutines = newDesc("go_goroutines", "Number of goroutines that currently exist.", gauge)
	goThreads    = newDesc("go_threads", "Number of OS threads created.", gauge)
	goInfo       = newDesc("go_info", "Information about the Go environment.", gauge, "version")
	goGCDuration = newDesc("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", summary)
	goLastGC     = newDesc("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", gauge)
)

// A runtimeFamily is the sum of some runtime/metrics values (all of kind
// uint64), as client_golang derived its go_memstats_* from them.
type runtimeFamily struct {
	d   *desc
	sum []string
}

const (
	rmTiny         = "/gc/heap/tiny/allocs:objects"
	rmHeapObjects  = "/memory/classes/heap/objects:bytes"
	rmHeapUnused   = "/memory/classes/heap/unused:bytes"
	rmHeapReleased = "/memory/classes/heap/released:bytes"
	rmHeapFree     = "/memory/classes/heap/free:bytes"
	rmStacks       = "/memory/classes/heap/stacks:bytes"
	rmMSpanInuse   = "/memory/classes/metadata/mspan/inuse:bytes"
	rmMCacheInuse  = "/memory/classes/metadata/mcache/inuse:bytes"
)

// memstats declares the family go_memstats_<name>.
func memstats(name, help, typ string, sum ...string) runtimeFamily {
	return runtimeFamily{newDesc("go_memstats_"+name, help, typ), sum}
}

var runtimeFamilies = []runtimeFamily{
	memstats("alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", gauge, rmHeapObjects),
	memstats("alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", counter, "/gc/heap/allocs:bytes"),
	memstats("buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", gauge, "/memory/classes/profiling/buckets:bytes"),
	memstats("frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", counter, "/gc/heap/frees:objects", rmTiny),
	memstats("gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", gauge, "/memory/classes/metadata/other:bytes"),
	memstats("heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", gauge, rmHeapObjects),
	memstats("heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gauge, rmHeapReleased, rmHeapFree),
	memstats("heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", gauge, rmHeapObjects, rmHeapUnused),
	memstats("heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", gauge, "/gc/heap/objects:objects"),
	memstats("heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", gauge, rmHeapReleased),
	memstats("heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gauge, rmHeapObjects, rmHeapUnused, rmHeapReleased, rmHeapFree),
	memstats("mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", counter, "/gc/heap/allocs:objects", rmTiny),
	memstats("mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", gauge, rmMCacheInuse),
	memstats("mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", gauge, rmMCacheInuse, "/memory/classes/metadata/mcache/free:bytes"),
	memstats("mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", gauge, rmMSpanInuse),
	memstats("mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", gauge, rmMSpanInuse, "/memory/classes/metadata/mspan/free:bytes"),
	memstats("next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", gauge, "/gc/heap/goal:bytes"),
	memstats("other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", gauge, "/memory/classes/other:bytes"),
	memstats("stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", gauge, rmStacks),
	memstats("stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", gauge, rmStacks, "/memory/classes/os-stacks:bytes"),
	memstats("sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", gauge, "/memory/classes/total:bytes"),

	{newDesc("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", gauge), []string{"/gc/gogc:percent"}},
	{newDesc("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", gauge), []string{"/gc/gomemlimit:bytes"}},
	{newDesc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", gauge), []string{"/sched/gomaxprocs:threads"}},
}

// runtimeNames are the runtime/metrics names runtimeFamilies read, each
// once; runtimeIndex maps a name to its index.
var runtimeNames, runtimeIndex = func() ([]string, map[string]int) {
	idx := map[string]int{}
	var names []string
	for _, f := range runtimeFamilies {
		for _, n := range f.sum {
			if _, ok := idx[n]; !ok {
				idx[n] = len(names)
				names = append(names, n)
			}
		}
	}
	return names, idx
}()

// gcQuantiles are go_gc_duration_seconds' quantiles: debug.ReadGCStats
// gives the minimum, the quartiles and the maximum of the recent pauses.
var gcQuantiles = []float64{0, 0.25, 0.5, 0.75, 1}

func addRuntime(e *exposition) {
	e.add(goGoroutines, float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	e.add(goThreads, float64(threads))
	e.add(goInfo, 1, runtime.Version())

	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, len(gcQuantiles))}
	debug.ReadGCStats(&gc)
	pauses := make([]float64, len(gcQuantiles))
	for i, p := range gc.PauseQuantiles {
		pauses[i] = p.Seconds()
	}
	e.addSummary(goGCDuration, &summaryValue{q: gcQuantiles, v: pauses, sum: gc.PauseTotal.Seconds(), count: uint64(gc.NumGC)})
	e.add(goLastGC, float64(gc.LastGC.UnixNano())/1e9)

	samples := make([]rtmetrics.Sample, len(runtimeNames))
	for i, n := range runtimeNames {
		samples[i].Name = n
	}
	rtmetrics.Read(samples)
	for _, f := range runtimeFamilies {
		var v uint64
		for _, n := range f.sum {
			// A name this Go does not know reads as KindBad: 0, as
			// client_golang took it.
			if s := samples[runtimeIndex[n]]; s.Value.Kind() == rtmetrics.KindUint64 {
				v += s.Value.Uint64()
			}
		}
		e.add(f.d, float64(v))
	}
}
