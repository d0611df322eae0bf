package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends service state changes to the service manager.
// Its methods are safe for concurrent use.
type Notifier struct {
	// Socket is the notification socket: a path, or "@name" for an
	// abstract socket. Empty makes every method a no-op.
	Socket string
}

// NewNotifier returns a Notifier for $NOTIFY_SOCKET (a no-op one when it
// is not set).
func NewNotifier() *Notifier {
	return &Notifier{Socket: os.Getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.Socket != "" }

// Notify sends one datagram of "KEY=VALUE" assignments, one per line, as
// sd_notify(3) does. It returns nil without sending when n is not Enabled.
func (n *Notifier) Notify(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("systemd: notify: %q is not one KEY=VALUE line", a)
		}
	}
	if strings.HasPrefix(n.Socket, "vsock:") {
		return fmt.Errorf("systemd: notify socket %s: vsock is not supported", n.Socket)
	}
	if !strings.HasPrefix(n.Socket, "/") && !strings.HasPrefix(n.Socket, "@") {
		return fmt.Errorf("systemd: notify socket %q: want an absolute path or @name", n.Socket)
	}
	// net maps a leading "@" to Linux's abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	defer c.Close()
	msg := strings.Join(assignments, "\n")
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("systemd: notify %q: %w", msg, err)
	}
	return nil
}

// Ready says the service has finished starting (or reloading). status,
// if not empty, is shown by systemctl status.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Notify("READY=1")
	}
	return n.Notify("READY=1", "STATUS="+oneLine(status))
}

// Reloading says the service is reloading its configuration; call Ready
// when it is done. The message carries MONOTONIC_USEC, as
// Type=notify-reload services must send.
func (n *Notifier) Reloading() error {
	if usec, ok := monotonicUsec(); ok {
		return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
	}
	return n.Notify("RELOADING=1")
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog is the keep-alive ping WatchdogSec= expects.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// WatchdogInterval returns how often the service manager expects a
// Watchdog ping: $WATCHDOG_USEC, when $WATCHDOG_PID is unset or names this
// process; 0 when there is no watchdog. Ping at half that, as
// sd_watchdog_enabled(3) advises.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv, os.Getpid())
}

func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	us := getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		wp, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("systemd: WATCHDOG_PID=%q is not a process id", p)
		}
		if wp != pid {
			return 0, nil // meant for another process
		}
	}
	n, err := strconv.ParseUint(us, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("systemd: WATCHDOG_USEC=%q: want a positive number of microseconds", us)
	}
	if n > uint64(1<<63-1)/1000 {
		return 0, errors.New("systemd: WATCHDOG_USEC too large")
	}
	return time.Duration(n) * time.Microsecond, nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
