package testutil

import (
	"os"
	"runtime"
	"syscall"
	"testing"
)

// AsUser runs f on a locked OS thread whose effective uid is uid. Linux
// credentials belong to a thread, and the raw setresuid changes this
// thread only (the runtime starts no new thread from a locked one). It
// needs root, and skips the test without it; CI runs as root.
func AsUser(t testing.TB, uid int, f func()) {
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
			t.Errorf("setresuid(-1, %d, -1): %v", uid, e)
			return
		}
		f()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
			t.Errorf("restoring euid 0: %v (the thread ends with this goroutine)", e)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
}
