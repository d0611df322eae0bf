package metrics

import "syscall"

// addProcess adds the CPU time and the start time, which GetProcessTimes
// gives. (client_golang also read the memory and the handle count, with
// calls the syscall package does not have.)
func addProcess(e *exposition) error {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return err
	}
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return err
	}
	// Kernel and user times are durations in 100 ns units, in a Filetime.
	ticks := func(t syscall.Filetime) float64 {
		return float64(uint64(t.HighDateTime)<<32|uint64(t.LowDateTime)) / 1e7
	}
	e.add(procCPU, ticks(kernel)+ticks(user))
	e.add(procStart, float64(created.Nanoseconds())/1e9)
	return nil
}
