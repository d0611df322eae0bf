package metrics

// The process's families, with client_golang's names, help and types. Each
// system gives what it can (process_<system>.go): Linux all of them, from
// /proc/self; other Unix systems and Windows the CPU time and the start
// time (and the descriptor limit on Unix); left out are what their standard
// library cannot read.
//
// client_golang's process_network_{receive,transmit}_bytes_total are not
// kept: on Linux they read /proc/self/net/netstat, which counts the whole
// network namespace, not the process.
var (
	procCPU      = newDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", counter)
	procMaxFDs   = newDesc("process_max_fds", "Maximum number of open file descriptors.", gauge)
	procOpenFDs  = newDesc("process_open_fds", "Number of open file descriptors.", gauge)
	procRSS      = newDesc("process_resident_memory_bytes", "Resident memory size in bytes.", gauge)
	procStart    = newDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", gauge)
	procVsize    = newDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", gauge)
	procMaxVsize = newDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", gauge)
)
