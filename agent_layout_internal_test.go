package netcluster

import (
	"testing"
	"unsafe"
)

// TestAgentLayout checks that the fields the dispatcher reads for every
// message (listeners, memo, nlisteners, q) and mu, which Emit writes for
// every message on another core, cannot share a cache line (64 bytes)
// wherever the Agent lies: a shared line moves between the two cores
// twice a message (BenchmarkEmitLocalAlone, cpu-ns/msg).
func TestAgentLayout(t *testing.T) {
	const line = 64
	var a Agent
	mu := unsafe.Offsetof(a.mu)
	for _, f := range []struct {
		name      string
		off, size uintptr
	}{
		{"listeners", unsafe.Offsetof(a.listeners), unsafe.Sizeof(a.listeners)},
		{"memo", unsafe.Offsetof(a.memo), unsafe.Sizeof(a.memo)},
		{"nlisteners", unsafe.Offsetof(a.nlisteners), unsafe.Sizeof(a.nlisteners)},
		{"q", unsafe.Offsetof(a.q), unsafe.Sizeof(a.q)},
	} {
		if end := f.off + f.size; end > mu || mu-end < line {
			t.Errorf("Agent.%s ends at byte %d, mu starts at %d: %d bytes apart, want at least %d before mu", f.name, end, mu, int(mu)-int(end), line)
		}
	}
}
