package config

import (
	"os"

	"github.com/netcluster/netcluster/internal/transport"
)

// ResolveSocketDir returns the directory for the local sockets. ncserver,
// the Go agents and ncclient all use this rule, so that they meet:
//
//  1. SocketDir ("socketdir"), if set;
//  2. else $NETCLUSTER_SOCKETDIR ([EnvSocketDir]), if set, read at each call;
//  3. else /var/run, when running as root;
//  4. else $XDG_RUNTIME_DIR, if set;
//  5. else the private per-user directory <temp dir>/netcluster-<uid>
//     (uid: the effective user id). The server creates it with mode 0700;
//     the server and the agents refuse it if it exists with another owner
//     or a wider mode, since in the shared temp dir another user could have
//     made it first.
//
// In a directory that group or others may write to, agents also check the
// server's user through peer credentials; see transport.Dial.
func (c *Config) ResolveSocketDir() string {
	return socketDir(c.SocketDir, os.Getenv, os.Geteuid(), transport.PrivateDir())
}

// socketDir is the rule of [Config.ResolveSocketDir], given the configured
// directory, the environment, the effective uid and the private directory.
func socketDir(configured string, getenv func(string) string, euid int, private string) string {
	switch {
	case configured != "":
		return configured
	case getenv(EnvSocketDir) != "":
		return getenv(EnvSocketDir)
	case euid == 0:
		return "/var/run"
	case getenv("XDG_RUNTIME_DIR") != "":
		return getenv("XDG_RUNTIME_DIR")
	}
	return private
}
