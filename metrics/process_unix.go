//go:build unix

package metrics

import "syscall"

// addRusage adds the CPU time and the descriptor limit, which every Unix
// system gives the same way.
func addRusage(e *exposition) error {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	e.add(procCPU, float64(ru.Utime.Nano()+ru.Stime.Nano())/1e9)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	e.add(procMaxFDs, float64(lim.Cur))
	return nil
}
