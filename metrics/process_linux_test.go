package metrics

import (
	"os"
	"testing"
)

// process_open_fds is the number of descriptors the process has open, as
// client_golang reported it: not counting one the scrape opens to count
// them (it counted 13 where client_golang, on the same idle ncserver,
// counted 12).
func TestOpenFDs(t *testing.T) {
	// Counted by hand: the entries of /proc/self/fd, less the one
	// reading them. Taken before and after, in case another goroutine
	// opened or closed one meanwhile.
	count := func() int {
		d, err := os.Open("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		names, err := d.Readdirnames(-1)
		if err != nil {
			t.Fatal(err)
		}
		return len(names) - 1
	}
	for try := 0; ; try++ {
		before := count()
		var e exposition
		if err := addProcess(&e); err != nil {
			t.Fatal(err)
		}
		after := count()
		mf := parse(t, string(e.appendText(nil)))
		got := mf["process_open_fds"].GetMetric()[0].GetGauge().GetValue()
		if before == after && got == float64(before) {
			return
		}
		if before == after || try == 10 {
			t.Fatalf("process_open_fds %v; the process has %d open (%d after)", got, before, after)
		}
	}
}
