package service

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultName is the name ncserver's Windows service is installed under.
const DefaultName = "ncserver"

// Description is the description the service is installed with.
const Description = "netcluster message bus server"

// ErrNotSupported is returned by the service functions outside Windows.
var ErrNotSupported = errors.New("netcluster: Windows services are only available on Windows")

// Where ConfigPath found the config path.
const (
	SourceFlag     = "flag"     // -config in the arguments
	SourceRegistry = "registry" // HKLM\Software\Netcluster, value conf
	SourceDefault  = "default"  // none: use the embedded default config
)

// ConfigPath returns the config file the server should load, and where that
// came from: "-config PATH" or "-config=PATH" (also with two dashes) in args,
// the last one winning as with the flag package; else the value lookupRegistry
// returns, if not empty (pass RegistryConfig; nil skips the registry); else ""
// with source "default", meaning the embedded default config. Arguments
// after "--" are not looked at.
//
// An error is returned for -config without a path, or when lookupRegistry
// fails; a missing registry key is not a failure (RegistryConfig returns "").
func ConfigPath(args []string, lookupRegistry func() (string, error)) (path, source string, err error) {
	found := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", "", errors.New("netcluster: flag -config needs a path")
			}
			i++
			value = args[i]
		}
		if value == "" {
			return "", "", errors.New("netcluster: flag -config needs a path")
		}
		path, found = value, true
	}
	if found {
		return path, SourceFlag, nil
	}
	if lookupRegistry != nil {
		p, err := lookupRegistry()
		if err != nil {
			return "", "", fmt.Errorf(`netcluster: read config path from HKLM\%s value %s: %w`, registryKey, registryValue, err)
		}
		if p != "" {
			return p, SourceRegistry, nil
		}
	}
	return "", SourceDefault, nil
}

// registryKey and registryValue locate the config path in the registry, as
// the original Node service read it.
const (
	registryKey   = `Software\Netcluster`
	registryValue = "conf"
)

// Verb is a service management command of ncserver.
type Verb string

// The management verbs. VerbNone means the command line has none: run the
// server.
const (
	VerbNone      Verb = ""
	VerbInstall   Verb = "install"
	VerbUninstall Verb = "uninstall"
	VerbStart     Verb = "start"
	VerbStop      Verb = "stop"
)

// ParseCommand reads a management verb from ncserver's arguments (without
// the program name). If args is empty or starts with a flag, it returns
// VerbNone and args unchanged. For install, rest is the arguments the
// service will be started with, e.g. ["-config", `C:\netcluster\config.json`];
// uninstall, start and stop take no arguments. Anything else is an error
// that says what is accepted.
func ParseCommand(args []string) (verb Verb, rest []string, err error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return VerbNone, args, nil
	}
	switch v := Verb(args[0]); v {
	case VerbInstall:
		return v, args[1:], nil
	case VerbUninstall, VerbStart, VerbStop:
		if len(args) > 1 {
			return VerbNone, nil, fmt.Errorf("netcluster: %s takes no arguments, got %q", v, args[1:])
		}
		return v, nil, nil
	}
	msg := fmt.Sprintf("netcluster: unknown command %q: want install, uninstall, start or stop, or flags", args[0])
	if strings.ContainsAny(args[0], `/\.`) {
		// The original took the config file as its only argument.
		msg += fmt.Sprintf(" (for a config file, use -config %s)", args[0])
	}
	return VerbNone, nil, errors.New(msg)
}
