package transport

import "os"

// DefaultMode is the file mode of a Unix channel socket when
// ListenConfig.Mode is zero: owner and group may connect.
const DefaultMode os.FileMode = 0o660

// ListenConfig controls who may connect to a listening endpoint. The zero
// value is valid: mode 0660 on Unix, and on Windows the server's own user,
// Administrators and SYSTEM.
type ListenConfig struct {
	// Mode is the permission bits of the socket file on Unix, e.g. 0660 for
	// a channel and 0600 for the control socket. Connecting needs write
	// permission. Zero means DefaultMode. Bits outside 0777 are an error.
	// Ignored on Windows.
	Mode os.FileMode

	// Group, if set, is let in besides the defaults: on Windows an account
	// name ("DOMAIN\Group", "Users") or a SID string ("S-1-5-32-545") granted
	// read and write on the pipe; on Unix a group name or numeric gid that
	// becomes the socket file's group, so that Mode's group bits apply to it.
	// Empty means none (Windows) or the process's group (Unix).
	Group string
}
