package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/testutil"
)

// buildServer builds ncserver into a temporary directory.
func buildServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ncserver")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/netcluster/netcluster/cmd/ncserver").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ncserver: %v\n%s", err, out)
	}
	return bin
}

// proc is one run of an ncserver process.
type proc struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
}

// startServer starts ncserver on config and waits until it is ready.
func startServer(t testing.TB, bin, config string) *proc {
	t.Helper()
	p := &proc{out: new(testutil.SyncBuffer), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "-config", config)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.out.String(), "ncserver ready") {
		select {
		case <-p.done:
			t.Fatalf("ncserver exited before it was ready:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("ncserver not ready after 15 s:\n%s", p.out)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return p
}

// kill kills the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// writeConfig writes an ncserver config with one channel, A, whose
// sockets are in dir.
func writeConfig(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := fmt.Sprintf(`{"socketdir": %q, "channels": {"A": {}}}`, dir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
