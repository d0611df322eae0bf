package systemd

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeManager is a notify socket, as systemd makes one for a service.
func fakeManager(t *testing.T, addr string) (*net.UnixConn, string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, addr
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, name := range []string{"path", "abstract"} {
		t.Run(name, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "notify")
			if name == "abstract" {
				addr = "@netcluster-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			c, addr := fakeManager(t, addr)
			n := &Notifier{Socket: addr}
			if !n.Enabled() {
				t.Fatal("not enabled")
			}
			if err := n.Ready("3 channels"); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != "READY=1\nSTATUS=3 channels" {
				t.Errorf("Ready: %q", got)
			}
			before, _ := monotonicUsec()
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := recv(t, c)
			after, _ := monotonicUsec()
			usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			v, err := strconv.ParseInt(usec, 10, 64)
			if !ok || err != nil || v < before || v > after {
				t.Errorf("Reloading: %q, want MONOTONIC_USEC in [%d, %d]", got, before, after)
			}
			n.Stopping()
			if got := recv(t, c); got != "STOPPING=1" {
				t.Errorf("Stopping: %q", got)
			}
			n.Watchdog()
			if got := recv(t, c); got != "WATCHDOG=1" {
				t.Errorf("Watchdog: %q", got)
			}
		})
	}
}

func TestNotifyDisabledAndErrors(t *testing.T) {
	var nilN *Notifier
	for _, n := range []*Notifier{nilN, {}} {
		if n.Enabled() || n.Ready("") != nil || n.Stopping() != nil {
			t.Errorf("%#v: a notifier without a socket must do nothing", n)
		}
	}
	for _, tc := range []struct {
		socket, want string
	}{
		{filepath.Join(t.TempDir(), "absent"), "no such file"},
		{"relative/sock", "want an absolute path or @name"},
		{"vsock:2:1234", "vsock is not supported"},
	} {
		if err := (&Notifier{Socket: tc.socket}).Ready(""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("socket %q: %v, want %q", tc.socket, err, tc.want)
		}
	}
	_, addr := fakeManager(t, filepath.Join(t.TempDir(), "n"))
	if err := (&Notifier{Socket: addr}).Notify("READY=1\nX=2"); err == nil {
		t.Error("a multi-line assignment was sent")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 30 * time.Second, ""},
		{"30000000", "42", 30 * time.Second, ""},
		{"30000000", "43", 0, ""}, // another process's
		{"abc", "", 0, `WATCHDOG_USEC="abc"`},
		{"0", "", 0, `WATCHDOG_USEC="0"`},
		{"1", "x", 0, `WATCHDOG_PID="x"`},
	} {
		env := map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.pid}
		got, err := watchdogInterval(func(k string) string { return env[k] }, 42)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("USEC=%q PID=%q: %v, %v; want %v, error %q", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
