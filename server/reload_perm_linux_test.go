package server

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/transport"
)

// reloadAsUser runs f on a locked OS thread whose effective uid is uid
// (Linux credentials are per thread; the runtime starts no thread from a
// locked one). Needs root, as CI runs.
func reloadAsUser(t *testing.T, uid int, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("ROOT-SKIP: acting as uid %d needs root", uid)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			runtime.UnlockOSThread()
			t.Errorf("setresuid: %v", e)
			return
		}
		f()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
			t.Errorf("restoring euid 0: %v", e)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// reloadconfig from a user who may use the control socket but could not
// read the file is refused without the file's content; the same request
// from root, who could read it, reads it.
func TestReloadConfigReadsOnlyWhatTheRequesterCould(t *testing.T) {
	s, dir := ctlServer(t, `{"controlsocketmode": "0666", "channels": {"A": {}}}`)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := ctlWriteFile(t, dir, "secret.json", `{"TOPSECRETWORD": "SECRETVALUE"}`) // 0600, root's
	path := transport.SocketPath(dir, control.Channel)

	var c *control.Client
	var err error
	reloadAsUser(t, 65534, func() { c, err = control.Dial(ctlCtx(t), path, &control.Options{Dial: transport.Dial}) })
	if err != nil {
		t.Fatalf("control connection as nobody: %v", err)
	}
	defer c.Close()
	for _, p := range []string{secret, "/etc/shadow"} {
		_, err = c.ReloadConfig(ctlCtx(t), p)
		if err == nil {
			t.Fatalf("reloadconfig %s as nobody succeeded", p)
		}
		for _, leak := range []string{"TOPSECRETWORD", "SECRETVALUE", "root:"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("reloadconfig %s as nobody quotes the file: %v", p, err)
			}
		}
		if want := p + ": uid 65534 may not read it"; !strings.Contains(err.Error(), want) {
			t.Errorf("reloadconfig %s as nobody: %v, want it to say %q", p, err, want)
		}
	}
	if got := s.Bus().ChannelNames(); strings.Join(got, ",") != "A,control" {
		t.Errorf("channels after refused reloads: %v", got)
	}

	// Root could read the file: the server reads it, and says what is wrong.
	_, err = ctlControl(t, dir).ReloadConfig(ctlCtx(t), secret)
	if err == nil || !strings.Contains(err.Error(), "TOPSECRETWORD: unknown key") {
		t.Errorf("reloadconfig as root: %v, want the file's own error", err)
	}
}
