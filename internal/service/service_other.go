//go:build !windows

package service

import "context"

// Run runs run as the Windows service name. Outside Windows it returns
// ErrNotSupported without calling run.
func Run(name string, run func(ctx context.Context) error) error {
	return ErrNotSupported
}

// IsWindowsService reports whether the process runs as a Windows service:
// never, outside Windows.
func IsWindowsService() (bool, error) {
	return false, nil
}

// Install returns ErrNotSupported outside Windows.
func Install(name, exePath string, args []string) error {
	return ErrNotSupported
}

// Uninstall returns ErrNotSupported outside Windows.
func Uninstall(name string) error {
	return ErrNotSupported
}

// Start returns ErrNotSupported outside Windows.
func Start(name string) error {
	return ErrNotSupported
}

// Stop returns ErrNotSupported outside Windows.
func Stop(name string) error {
	return ErrNotSupported
}

// RegistryConfig returns the config path stored in the registry: outside
// Windows there is no registry, so ("", nil), and ConfigPath falls through
// to the default. This lets callers pass RegistryConfig on every platform.
func RegistryConfig() (string, error) {
	return "", nil
}
