//go:build !unix

package netcluster_test

// cpuTime returns 0: the process's CPU time is not read on this platform.
func cpuTime() int64 { return 0 }
