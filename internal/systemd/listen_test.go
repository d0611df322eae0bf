//go:build unix

package systemd

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pass puts the descriptors of files at consecutive free descriptor
// numbers, as a service manager would at 3, 4, …, and returns the first.
func pass(t *testing.T, fds ...int) int {
	t.Helper()
	first := 900
	for ; ; first += 10 {
		free := true
		for i := range fds {
			if _, err := unix.FcntlInt(uintptr(first+i), unix.F_GETFD, 0); err == nil {
				free = false
			}
		}
		if free {
			break
		}
	}
	for i, fd := range fds {
		if err := unix.Dup2(fd, first+i); err != nil {
			t.Fatal(err)
		}
	}
	return first
}

func unixListener(t *testing.T, path string) int {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // f keeps the socket open
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestListeners(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	first := pass(t, unixListener(t, pa), unixListener(t, pb))
	got, err := listeners(env(map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "A:control"}), 7, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "A" || got[1].Name != "control" {
		t.Fatalf("listeners %v", got)
	}
	for i, path := range []string{pa, pb} {
		if a := got[i].Addr().String(); a != path {
			t.Errorf("listener %d on %s, want %s", i, a, path)
		}
		// The descriptor is a working listener: a client connects through it.
		done := make(chan error, 1)
		go func() {
			c, err := got[i].Accept()
			if err == nil {
				c.Close()
			}
			done <- err
		}()
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got[i].Close()
	}
	// The passed numbers were handed over: closed, the listener has its own.
	if _, err := unix.FcntlInt(uintptr(first), unix.F_GETFD, 0); err == nil {
		t.Errorf("descriptor %d still open", first)
	}
}

func TestListenersNone(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"LISTEN_PID": "8", "LISTEN_FDS": "2"}, // another process's
		{"LISTEN_PID": "7", "LISTEN_FDS": "0"},
	} {
		got, err := listeners(env(m), 7, 3)
		if err != nil || got != nil {
			t.Errorf("%v: %v, %v; want none", m, got, err)
		}
	}
}

func TestListenersErrors(t *testing.T) {
	dir := t.TempDir()
	// A datagram socket, as a ListenDatagram= line would pass.
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "dg"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	df, _ := dg.File()
	dg.Close()
	defer df.Close()
	ok := pass(t, unixListener(t, filepath.Join(dir, "ok")))
	bad := pass(t, int(df.Fd()))
	for _, tc := range []struct {
		name  string
		env   map[string]string
		first int
		want  string
	}{
		{"bad pid", map[string]string{"LISTEN_PID": "x", "LISTEN_FDS": "1"}, ok, `LISTEN_PID="x"`},
		{"bad count", map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "-1"}, ok, `LISTEN_FDS="-1"`},
		{"names mismatch", map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "A:B"}, ok, "names 2 descriptors, LISTEN_FDS=1"},
		{"not open", map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "1"}, bad + 5, "descriptor"},
		{"not listening", map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "A"}, bad, `descriptor ` + strconv.Itoa(bad) + ` ("A"): not a listening socket`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := listeners(env(tc.env), 7, tc.first)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
	unix.Close(ok)
	unix.Close(bad)
}
