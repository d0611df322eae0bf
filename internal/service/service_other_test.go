//go:build !windows

package service

import (
	"context"
	"errors"
	"testing"
)

func TestNotSupported(t *testing.T) {
	t.Parallel()
	called := false
	checks := map[string]error{
		"Run":       Run(DefaultName, func(context.Context) error { called = true; return nil }),
		"Install":   Install(DefaultName, "/usr/local/bin/ncserver", nil),
		"Uninstall": Uninstall(DefaultName),
		"Start":     Start(DefaultName),
		"Stop":      Stop(DefaultName),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: err = %v, want ErrNotSupported", name, err)
		}
	}
	if called {
		t.Error("Run called run")
	}
	if got, want := ErrNotSupported.Error(), "netcluster: Windows services are only available on Windows"; got != want {
		t.Errorf("ErrNotSupported = %q, want %q", got, want)
	}
	if ok, err := IsWindowsService(); ok || err != nil {
		t.Errorf("IsWindowsService() = %v, %v, want false, nil", ok, err)
	}
	if p, err := RegistryConfig(); p != "" || err != nil {
		t.Errorf("RegistryConfig() = %q, %v, want \"\", nil", p, err)
	}
	// Callers may pass RegistryConfig everywhere.
	if p, src, err := ConfigPath(nil, RegistryConfig); p != "" || src != SourceDefault || err != nil {
		t.Errorf("ConfigPath(nil, RegistryConfig) = %q, %q, %v, want default", p, src, err)
	}
}
