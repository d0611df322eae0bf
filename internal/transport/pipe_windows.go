package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// pipeBufferSize is the input and output buffer size of each pipe instance.
const pipeBufferSize = 64 << 10

// probeTimeout bounds the dial Listen makes to tell whether a pipe name is
// taken.
const probeTimeout = time.Second

// SocketPath returns where channel listens: the named pipe
// \\.\pipe\netcluster-<channel>. dir is ignored on Windows.
func SocketPath(dir, channel string) string {
	return `\\.\pipe\netcluster-` + channel
}

// PrivateDir returns the per-user socket directory of the socket-directory
// rule, <temp dir>\netcluster. Named pipes have no directory, so on
// Windows it names nothing that is used.
func PrivateDir() string {
	return filepath.Join(os.TempDir(), "netcluster")
}

// Listen listens on the named pipe path in byte mode with 64 KiB buffers,
// rejecting remote clients. Its security descriptor grants full access to
// SYSTEM, Administrators and the user the process runs as, and read and
// write to cfg.Group if set; cfg.Mode is ignored.
//
// If a server already holds the pipe name, Listen returns an error wrapping
// ErrInUse. A pipe disappears with its server's last handle, so there is
// nothing stale to remove.
func Listen(path string, cfg ListenConfig) (net.Listener, error) {
	sddl, err := securityDescriptor(cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("netcluster: listen on %s: %w", path, err)
	}
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: sddl,
		MessageMode:        false,
		InputBufferSize:    pipeBufferSize,
		OutputBufferSize:   pipeBufferSize,
	})
	if err != nil {
		if pipeTaken(err) && pipeAnswers(path) {
			return nil, inUse(path)
		}
		return nil, fmt.Errorf("netcluster: listen on %s: %w", path, err)
	}
	return ln, nil
}

// pipeTaken reports the errors that creating the first instance of a pipe
// name that already exists gives.
func pipeTaken(err error) bool {
	return errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
		errors.Is(err, windows.ERROR_PIPE_BUSY) ||
		errors.Is(err, windows.ERROR_ALREADY_EXISTS)
}

// pipeAnswers reports whether something serves the pipe path. A pipe that
// exists but denies us, or whose instances are all busy, counts too.
func pipeAnswers(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c, err := winio.DialPipeContext(ctx, path)
	if err == nil {
		c.Close()
		return true
	}
	return errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, context.DeadlineExceeded)
}

// securityDescriptor builds the pipe's SDDL for the current user and group.
func securityDescriptor(group string) (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("current user: %w", err)
	}
	var groupSID string
	if group != "" {
		sid, err := lookupSID(group)
		if err != nil {
			return "", fmt.Errorf("group %q: %w", group, err)
		}
		groupSID = sid.String()
	}
	return pipeSDDL(tu.User.Sid.String(), groupSID), nil
}

// lookupSID resolves "S-1-…" SID strings and account names.
func lookupSID(name string) (*windows.SID, error) {
	if strings.HasPrefix(strings.ToUpper(name), "S-1-") {
		return windows.StringToSid(name)
	}
	sid, _, _, err := windows.LookupSID("", name)
	return sid, err
}

// Dial connects to the named pipe path, retrying while all its instances are
// busy until ctx is done. ctx bounds the connection attempt only. A failure
// wraps ErrNoServer and the system error (fs.ErrNotExist when no server has
// the pipe), or ctx's error.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	c, err := winio.DialPipeContext(ctx, path)
	if err != nil {
		return nil, noServer(path, err)
	}
	return c, nil
}
