package transport

import "golang.org/x/sys/unix"

// unixSocket returns a new close-on-exec Unix stream socket.
func unixSocket() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
