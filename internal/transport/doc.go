// Package transport opens the local endpoints that channels listen on and
// that agents dial: Unix domain sockets on Unix systems and named pipes on
// Windows.
//
// Use [SocketPath] to name a channel's endpoint, [Listen] to serve it and
// [Dial] to connect to it. [PeerCred] reports which process is on the other
// end of a connection where the platform can tell.
//
// # Platforms
//
// On Unix the endpoint is the socket file <dir>/netcluster-<channel>. Listen
// refuses to take over a socket that a live server answers on ([ErrInUse]),
// removes a stale one left by a crash, never deletes anything that is not a
// socket ([ErrNotSocket]), and reports paths longer than the kernel accepts
// ([ErrPathTooLong]) before the kernel does. It sets the socket's mode
// before it listens, never touching the process umask. Closing the listener
// removes the socket file. Dial refuses the per-user [PrivateDir] if another
// user could have prepared it ([ErrUnsafeDir]) and, in a directory others
// may write to, a server of an untrusted user ([ErrImpostor]); a socket
// whose mode leaves the user out is [ErrRefused], not [ErrNoServer].
//
// On Windows the endpoint is the named pipe \\.\pipe\netcluster-<channel>,
// in byte mode, guarded by a security descriptor that lets in the user the
// server runs as, Administrators, SYSTEM and optionally one more group.
// Named pipes vanish with their last handle, so there is no stale state.
//
// The rest of the bus only sees [net.Listener] and [net.Conn].
package transport
