//go:build unix && !linux

package metrics

import "time"

// processInit stands for the process's start time, which the standard
// library does not give outside Linux: the package's initialization, a
// few milliseconds after.
var processInit = time.Now()

// addProcess adds what the standard library gives: CPU time, descriptor
// limit, and (nearly) the start time.
func addProcess(e *exposition) error {
	e.add(procStart, float64(processInit.UnixNano())/1e9)
	return addRusage(e)
}
