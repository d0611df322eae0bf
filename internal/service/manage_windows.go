package service

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// controlTimeout bounds how long Start and Stop wait for the service to
// reach its new state.
const controlTimeout = 30 * time.Second

// eventSourceKey is where event log sources are registered.
const eventSourceKey = `SYSTEM\CurrentControlSet\Services\EventLog\Application\`

// Install installs the service name, running exePath with args, started
// automatically at boot, as LocalSystem, restarted by the service control
// manager if it fails, and registers its event log source. exePath and a
// -config path in args must be absolute: a service starts in
// C:\Windows\System32. It needs Administrator rights.
func Install(name, exePath string, args []string) error {
	if !filepath.IsAbs(exePath) {
		return fmt.Errorf("netcluster: install service %s: executable path %s is not absolute", name, exePath)
	}
	if p, _, err := ConfigPath(args, nil); err != nil {
		return fmt.Errorf("netcluster: install service %s: %w", name, err)
	} else if p != "" && !filepath.IsAbs(p) {
		return fmt.Errorf("netcluster: install service %s: config path %s is not absolute", name, p)
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("netcluster: install service %s: connect to service manager: %w", name, err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(name); err == nil {
		s.Close()
		return fmt.Errorf("netcluster: install service %s: it already exists", name)
	}
	display := "netcluster server"
	if name != DefaultName {
		display += " (" + name + ")"
	}
	s, err := m.CreateService(name, exePath, mgr.Config{
		DisplayName: display,
		Description: Description,
		StartType:   mgr.StartAutomatic,
	}, args...)
	if err != nil {
		return fmt.Errorf("netcluster: install service %s: %w", name, err)
	}
	defer s.Close()

	// Restart after 5 s, twice, then give up for the day: like systemd's
	// Restart=on-failure. Non-crash failures (run returned an error) count.
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 5 * time.Second}
	if err := s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, {Type: mgr.NoAction}}, 24*60*60); err == nil {
		err = s.SetRecoveryActionsOnNonCrashFailures(true)
	}
	if err != nil {
		s.Delete()
		return fmt.Errorf("netcluster: install service %s: set recovery actions: %w", name, err)
	}

	if !eventSourceExists(name) {
		if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
			s.Delete()
			return fmt.Errorf("netcluster: install service %s: event log source: %w", name, err)
		}
	}
	return nil
}

func eventSourceExists(name string) bool {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, eventSourceKey+name, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	k.Close()
	return true
}

// Uninstall stops the service name if it runs, deletes it and removes its
// event log source. It needs Administrator rights.
func Uninstall(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("netcluster: uninstall service %s: connect to service manager: %w", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("netcluster: uninstall service %s: %w", name, err)
	}
	defer s.Close()
	if err := stop(s); err != nil {
		return fmt.Errorf("netcluster: uninstall service %s: %w", name, err)
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("netcluster: uninstall service %s: %w", name, err)
	}
	if eventSourceExists(name) {
		if err := eventlog.Remove(name); err != nil {
			return fmt.Errorf("netcluster: uninstall service %s: remove event log source: %w", name, err)
		}
	}
	return nil
}

// Start starts the service name and waits, at most 30 s, until it runs. An
// error says if it stopped instead, with its exit code.
func Start(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("netcluster: start service %s: connect to service manager: %w", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("netcluster: start service %s: %w", name, err)
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("netcluster: start service %s: %w", name, err)
	}
	st, err := waitState(s, func(st svc.State) bool { return st != svc.StartPending })
	if err != nil {
		return fmt.Errorf("netcluster: start service %s: %w", name, err)
	}
	if st.State != svc.Running {
		return fmt.Errorf("netcluster: start service %s: it stopped (exit code %d, service exit code %d); see the Application event log",
			name, st.Win32ExitCode, st.ServiceSpecificExitCode)
	}
	return nil
}

// Stop stops the service name and waits, at most 30 s, until it has
// stopped. Stopping a stopped service is not an error.
func Stop(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("netcluster: stop service %s: connect to service manager: %w", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("netcluster: stop service %s: %w", name, err)
	}
	defer s.Close()
	if err := stop(s); err != nil {
		return fmt.Errorf("netcluster: stop service %s: %w", name, err)
	}
	return nil
}

func stop(s *mgr.Service) error {
	_, err := s.Control(svc.Stop)
	if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = waitState(s, func(st svc.State) bool { return st == svc.Stopped })
	return err
}

// waitState polls s until done accepts its state or controlTimeout passes.
func waitState(s *mgr.Service, done func(svc.State) bool) (svc.Status, error) {
	deadline := time.Now().Add(controlTimeout)
	for {
		st, err := s.Query()
		if err != nil {
			return st, err
		}
		if done(st.State) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("still in state %s after %v", stateName(st.State), controlTimeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "Stopped"
	case svc.StartPending:
		return "StartPending"
	case svc.StopPending:
		return "StopPending"
	case svc.Running:
		return "Running"
	case svc.ContinuePending:
		return "ContinuePending"
	case svc.PausePending:
		return "PausePending"
	case svc.Paused:
		return "Paused"
	}
	return fmt.Sprintf("state %d", uint32(s))
}

// RegistryConfig returns the config path in the registry value conf under
// HKLM\Software\Netcluster (64-bit view), with environment variables expanded
// if it is a REG_EXPAND_SZ. A missing key or value gives ("", nil); a value
// of another type is an error.
func RegistryConfig() (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, registryKey, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer k.Close()
	v, typ, err := k.GetStringValue(registryValue)
	if errors.Is(err, registry.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if typ == registry.EXPAND_SZ {
		return registry.ExpandString(v)
	}
	return v, nil
}
