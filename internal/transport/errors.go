package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
)

// Errors returned by Listen and Dial, wrapped with the path concerned. Test
// for them with errors.Is.
var (
	// ErrInUse means a live server already listens on the path.
	ErrInUse = errors.New("netcluster: a live server is already listening")
	// ErrNotSocket means the path exists and is not a socket; Listen never
	// removes such a file.
	ErrNotSocket = errors.New("netcluster: path exists and is not a socket")
	// ErrPathTooLong means the socket path is longer than the platform's
	// socket address can hold.
	ErrPathTooLong = errors.New("netcluster: socket path too long")
	// ErrNoServer means Dial found nothing listening on the path.
	ErrNoServer = errors.New("netcluster: no server")
	// ErrRefused means a socket is there but does not let this user
	// connect: its mode or group leaves this user out.
	ErrRefused = errors.New("netcluster: the server's socket refuses this user")
	// ErrUnsafeDir means the private socket directory exists with another
	// owner or a mode that lets others in; see PrivateDir.
	ErrUnsafeDir = errors.New("netcluster: unsafe socket directory")
	// ErrImpostor means a socket in a directory others may write to is
	// served by a user the agent does not trust; see Dial.
	ErrImpostor = errors.New("netcluster: socket served by an untrusted user")
	// ErrNotSupported means the platform has neither Unix sockets nor
	// named pipes.
	ErrNotSupported = errors.New("netcluster: local sockets are not supported on this platform")
)

// inUse returns ErrInUse for path.
func inUse(path string) error {
	return fmt.Errorf("%w on %s", ErrInUse, path)
}

// noServer wraps a failed dial as "netcluster: no server on <path>: <cause>".
// The message keeps only the innermost cause (the net package's own prefix
// repeats the path), while errors.Is still sees the whole chain, including
// context.Canceled and context.DeadlineExceeded.
//
// A permission error is not "no server": it becomes ErrRefused, saying
// that the socket is there and which user it refuses.
func noServer(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s is there, but its mode or group does not let you (%s) connect: %w",
			ErrRefused, path, whoAmI(), shortCause{err})
	}
	return fmt.Errorf("%w on %s: %w", ErrNoServer, path, shortCause{err})
}

// whoAmI names the user this process runs as, for errors.
func whoAmI() string {
	if uid := os.Geteuid(); uid >= 0 {
		return "uid " + strconv.Itoa(uid)
	}
	return "this user"
}

// shortCause prints the innermost system error of err and unwraps to err.
type shortCause struct{ err error }

func (c shortCause) Error() string {
	var se *os.SyscallError
	if errors.As(c.err, &se) {
		return se.Err.Error()
	}
	var pe *os.PathError
	if errors.As(c.err, &pe) {
		return pe.Err.Error()
	}
	var oe *net.OpError
	if errors.As(c.err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return c.err.Error()
}

func (c shortCause) Unwrap() error { return c.err }
