// Package systemd speaks the two systemd protocols ncserver uses, written
// against their documentation rather than taken from a library:
//
//   - readiness notification, sd_notify(3): datagrams "READY=1",
//     "RELOADING=1", "STOPPING=1", "WATCHDOG=1" to the socket named by
//     $NOTIFY_SOCKET, for Type=notify services and WatchdogSec=;
//   - socket activation, sd_listen_fds(3): listening sockets passed as file
//     descriptors 3, 4, … with $LISTEN_FDS, $LISTEN_PID and
//     $LISTEN_FDNAMES, for .socket units.
//
// Without those variables everything here is a no-op, so a program can
// call it unconditionally, also on systems without systemd.
package systemd
