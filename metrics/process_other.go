//go:build !unix && !windows

package metrics

import "time"

// processInit stands for the process's start time: the package's
// initialization, a few milliseconds after.
var processInit = time.Now()

// addProcess adds the start time, all the standard library gives here.
func addProcess(e *exposition) error {
	e.add(procStart, float64(processInit.UnixNano())/1e9)
	return nil
}
