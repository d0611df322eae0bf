// Package service runs ncserver as a Windows service and holds the service
// logic that does not depend on Windows, so that it is tested everywhere.
//
// Platform-independent:
//   - [ConfigPath] finds the config file: -config in the arguments, else the
//     registry value conf under HKLM\Software\Netcluster, else the embedded
//     default.
//   - [ParseCommand] reads the management verbs install, uninstall, start and
//     stop from ncserver's command line.
//
// Windows only (elsewhere they return [ErrNotSupported]): [Run] runs a
// function as the service, [Install], [Uninstall], [Start] and [Stop] manage
// it through the service control manager. [IsWindowsService] and
// [RegistryConfig] work everywhere and report "no" and "nothing" outside
// Windows.
package service
