package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// firstFD is SD_LISTEN_FDS_START: passed descriptors start at 3.
const firstFD = 3

// Listener is one socket passed by the service manager.
type Listener struct {
	// Name is the socket's FileDescriptorName= (by default the socket
	// unit's name), "unknown" when the manager passed no names.
	Name string
	net.Listener
}

// Listeners returns the listening sockets the service manager passed to
// this process ($LISTEN_FDS descriptors from 3 on, for $LISTEN_PID, named
// by $LISTEN_FDNAMES), in order; none when the variables are unset or
// meant for another process. It unsets the variables and marks the
// descriptors close-on-exec, so child processes do not inherit them, and
// it is meant to be called once. A passed descriptor that is not a
// listening socket is an error naming it.
func Listeners() ([]Listener, error) {
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	return listeners(os.Getenv, os.Getpid(), firstFD)
}

func listeners(getenv func(string) string, pid, first int) ([]Listener, error) {
	ps, fs := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if ps == "" || fs == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(ps); err != nil {
		return nil, fmt.Errorf("systemd: LISTEN_PID=%q is not a process id", ps)
	} else if p != pid {
		return nil, nil // meant for another process
	}
	n, err := strconv.Atoi(fs)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("systemd: LISTEN_FDS=%q: want a number of descriptors", fs)
	}
	if n == 0 {
		return nil, nil
	}
	names := make([]string, n)
	if ns := getenv("LISTEN_FDNAMES"); ns != "" {
		split := strings.Split(ns, ":")
		if len(split) != n {
			return nil, fmt.Errorf("systemd: LISTEN_FDNAMES=%q names %d descriptors, LISTEN_FDS=%d", ns, len(split), n)
		}
		copy(names, split)
	} else {
		for i := range names {
			names[i] = "unknown"
		}
	}
	out := make([]Listener, 0, n)
	fail := func(err error) ([]Listener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	for i := range n {
		fd := first + i
		ln, err := fileListener(fd, names[i])
		if err != nil {
			return fail(fmt.Errorf("systemd: passed descriptor %d (%q): %w", fd, names[i], err))
		}
		out = append(out, Listener{Name: names[i], Listener: ln})
	}
	return out, nil
}

// fileListener makes a net.Listener of descriptor fd and closes fd (the
// listener has its own copy).
func fileListener(fd int, name string) (net.Listener, error) {
	if err := closeOnExec(fd); err != nil { // and checks it listens
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileListener(f)
}
