package metrics_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/netcluster/netcluster/internal/testutil/testserver"
)

// The Go runtime's and the process's families that dashboards plot are
// there, with client_golang's names and types, and sensible values.
func TestMetricsRuntimeAndProcess(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, testserver.ParseConfig(t, `{"channels": {"A": {}}}`))
	runtime.GC() // a pause for go_gc_duration_seconds, a time for the last GC
	mf := scrape(t, serve(t, srv))
	gaugeFams := []string{"go_goroutines", "go_threads", "go_info",
		"go_memstats_alloc_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_sys_bytes", "go_memstats_heap_objects", "go_memstats_next_gc_bytes",
		"go_memstats_last_gc_time_seconds", "go_memstats_heap_idle_bytes", "go_memstats_stack_inuse_bytes",
		"go_sched_gomaxprocs_threads", "go_gc_gogc_percent",
		"process_start_time_seconds"}
	counterFams := []string{"go_memstats_alloc_bytes_total", "go_memstats_mallocs_total", "process_cpu_seconds_total"}
	if runtime.GOOS == "linux" {
		gaugeFams = append(gaugeFams, "process_resident_memory_bytes", "process_virtual_memory_bytes",
			"process_open_fds", "process_max_fds", "process_virtual_memory_max_bytes")
	}
	for _, name := range gaugeFams {
		if f := mf[name]; f == nil || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
			t.Errorf("%s: %v; want one gauge", name, f)
		}
	}
	for _, name := range counterFams {
		if f := mf[name]; f == nil || f.GetType() != dto.MetricType_COUNTER || len(f.GetMetric()) != 1 {
			t.Errorf("%s: %v; want one counter", name, f)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if l := mf["go_info"].GetMetric()[0].GetLabel(); len(l) != 1 || l[0].GetName() != "version" || l[0].GetValue() != runtime.Version() {
		t.Errorf("go_info labels %v; want version=%s", l, runtime.Version())
	}
	gc := mf["go_gc_duration_seconds"]
	if gc == nil || gc.GetType() != dto.MetricType_SUMMARY {
		t.Fatalf("go_gc_duration_seconds %v; want a summary", gc)
	}
	s := gc.GetMetric()[0].GetSummary()
	var qs []float64
	for _, q := range s.GetQuantile() {
		qs = append(qs, q.GetQuantile())
		if v := q.GetValue(); v < 0 || v > s.GetSampleSum() {
			t.Errorf("GC pause quantile %v = %v, sum %v", q.GetQuantile(), v, s.GetSampleSum())
		}
	}
	if want := []float64{0, 0.25, 0.5, 0.75, 1}; len(qs) != len(want) || qs[0] != 0 || qs[1] != 0.25 || qs[2] != 0.5 || qs[3] != 0.75 || qs[4] != 1 {
		t.Errorf("GC quantiles %v; want %v", qs, want)
	}
	if s.GetSampleCount() == 0 || s.GetSampleSum() <= 0 {
		t.Errorf("GC count %d sum %v after runtime.GC", s.GetSampleCount(), s.GetSampleSum())
	}
	now := float64(time.Now().UnixNano()) / 1e9
	if v := single(t, mf, "go_memstats_last_gc_time_seconds"); v < now-60 || v > now+1 {
		t.Errorf("last GC at %v, now %v", v, now)
	}
	if v := single(t, mf, "go_goroutines"); v < 2 {
		t.Errorf("go_goroutines %v", v)
	}
	if v, h := single(t, mf, "go_memstats_heap_alloc_bytes"), single(t, mf, "go_memstats_heap_inuse_bytes"); v <= 0 || v > h || h > single(t, mf, "go_memstats_sys_bytes") {
		t.Errorf("heap alloc %v, in use %v, sys %v", v, h, single(t, mf, "go_memstats_sys_bytes"))
	}
	// The test binary started within the test timeout, not before.
	if v := single(t, mf, "process_start_time_seconds"); v < now-30*60 || v > now+1 {
		t.Errorf("process start time %v, now %v", v, now)
	}
	if runtime.GOOS == "linux" {
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		if v := single(t, mf, "process_resident_memory_bytes"); v < 1<<20 || v > 1<<34 {
			t.Errorf("RSS %v bytes (/proc/self/status: %s)", v, status)
		}
		if v := single(t, mf, "process_open_fds"); v < 3 || v > single(t, mf, "process_max_fds") {
			t.Errorf("open fds %v, max %v", v, single(t, mf, "process_max_fds"))
		}
		if v := single(t, mf, "process_virtual_memory_bytes"); v < single(t, mf, "process_resident_memory_bytes") {
			t.Errorf("virtual %v below resident", v)
		}
	}
}
