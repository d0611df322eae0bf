package transport

// maxPathLen is the longest socket path accepted: sun_path holds 108 bytes on
// Linux; one is kept for the terminating NUL that other tools expect.
const maxPathLen = 107
