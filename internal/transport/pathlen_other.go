//go:build unix && !linux

package transport

// maxPathLen is the longest socket path accepted: sun_path holds 104 bytes on
// macOS and the BSDs, including the terminating NUL. Other Unix systems hold
// at least as much.
const maxPathLen = 103
