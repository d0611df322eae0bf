package server

// The process's memory limit (memorylimit): RSS follows the configured
// bound, not only the Go heap.

import "runtime/debug"

// memoryLimit sets the Go runtime's soft memory limit from the
// configuration, and gives back the limit the process had before when
// the setting goes or the server closes. Its methods are called under
// Server.mu.
type memoryLimit struct {
	set  bool
	prev int64 // the limit before the server set one
}

// apply keeps the process under n bytes, or, for 0, restores the limit it
// had before the server set one. The runtime's limit counts only the
// memory it manages: it is set to 7/8 of n, leaving the rest for the
// program's code and what the runtime does not count, so that the
// process's RSS stays under n.
func (m *memoryLimit) apply(n int) {
	switch {
	case n > 0:
		prev := debug.SetMemoryLimit(int64(n - n/8))
		if !m.set {
			m.prev, m.set = prev, true
		}
	case m.set:
		debug.SetMemoryLimit(m.prev)
		m.set = false
	}
}
