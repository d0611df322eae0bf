package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Env describes the machine a run was made on.
type Env struct {
	CPU        string // model name from /proc/cpuinfo
	NumCPU     int
	GoVersion  string
	Revision   string // of the netcluster module: git describe --always --dirty
	LoadBefore string // /proc/loadavg, 1, 5 and 15 minutes
	LoadAfter  string
}

func (e Env) String() string {
	return fmt.Sprintf("%d × %s, %s, netcluster %s; load average %s before, %s after",
		e.NumCPU, e.CPU, e.GoVersion, e.Revision, e.LoadBefore, e.LoadAfter)
}

func readEnv(ctx context.Context) Env {
	e := Env{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), CPU: "unknown", LoadBefore: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range bytes.Lines(b) {
			if k, v, ok := strings.Cut(string(l), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if root, err := moduleRoot(ctx); err == nil {
		if b, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
			e.Revision = strings.TrimSpace(string(b))
		}
	}
	if e.Revision == "" {
		e.Revision = "(unknown revision)"
	}
	return e
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
