package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// userHZ is the unit of the clock ticks of /proc/self/stat: 100 on every
// Linux architecture Go runs on (procfs takes it as a constant too).
const userHZ = 100

// addProcess adds the process's families, from /proc/self on Linux.
func addProcess(e *exposition) error {
	errs := []error{addRusage(e)}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err == nil {
		e.add(procMaxVsize, float64(lim.Cur)) // RLIM_INFINITY is 2^64-1, as before
	} else {
		errs = append(errs, err)
	}
	if err := addStat(e); err != nil {
		errs = append(errs, err)
	}
	if n, err := openFDs(); err == nil {
		e.add(procOpenFDs, float64(n))
	} else {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// openFDs counts the process's open descriptors. Since Linux 6.2 the size
// of /proc/self/fd is that count, read without opening anything, as procfs
// (client_golang) reads it; with 1,000 agents that is 1,000 names not
// read per scrape. Older kernels give 0 there: then the entries are
// counted, less the descriptor reading them.
func openFDs() (int, error) {
	if fi, err := os.Stat("/proc/self/fd"); err != nil {
		return 0, err
	} else if fi.Size() > 0 {
		return int(fi.Size()), nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	return len(names) - 1, err
}

// addStat adds the virtual size, resident size and start time from
// /proc/self/stat (proc(5)).
func addStat(e *exposition) error {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return fmt.Errorf("/proc/self/stat: no ')' in %q", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, state
	if len(f) < 22 {
		return fmt.Errorf("/proc/self/stat: %d fields after the command", len(f))
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(string(f[n-3]), 10, 64) }
	start, err1 := field(22) // clock ticks after boot
	vsize, err2 := field(23) // bytes
	rss, err3 := field(24)   // pages
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("/proc/self/stat: %w", err)
	}
	e.add(procVsize, float64(vsize))
	e.add(procRSS, float64(rss)*float64(os.Getpagesize()))
	boot, err := bootTime()
	if err != nil {
		return err
	}
	e.add(procStart, float64(boot)+float64(start)/userHZ)
	return nil
}

// bootTime is the btime line of /proc/stat, in seconds since the epoch;
// read once, it does not change.
var bootTime = sync.OnceValues(func() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, errors.New("/proc/stat: no btime")
})
