package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/netcluster/netcluster/internal/service"
)

// dispatch runs a service management verb, runs ncserver as the Windows
// service when the service manager started it, or else runs it in the
// foreground.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch service.Verb(args[0]) {
		case service.VerbInstall, service.VerbUninstall, service.VerbStart, service.VerbStop:
			verb, rest, err := service.ParseCommand(args)
			if err != nil {
				return err
			}
			return manage(verb, rest, stdout)
		}
	}
	isService, err := service.IsWindowsService()
	if err != nil {
		return err
	}
	if !isService {
		return run(ctx, args, stdout, stderr)
	}
	return service.Run(service.DefaultName, func(ctx context.Context) error {
		args, from := serviceArgs(args, service.RegistryConfig)
		return runFrom(ctx, args, from, io.Discard, stderr)
	})
}

// serviceArgs returns the service's arguments, with -config from the
// registry added when the arguments have none; from is then "registry".
func serviceArgs(args []string, registry func() (string, error)) (_ []string, from string) {
	path, source, err := service.ConfigPath(args, registry)
	if err != nil || source != service.SourceRegistry {
		return args, "" // run reports a bad -config itself
	}
	return append([]string{"-config", path}, args...), service.SourceRegistry
}

func manage(verb service.Verb, rest []string, stdout io.Writer) error {
	var err error
	switch verb {
	case service.VerbInstall:
		var exe string
		if exe, err = os.Executable(); err == nil {
			err = service.Install(service.DefaultName, exe, rest)
		}
	case service.VerbUninstall:
		err = service.Uninstall(service.DefaultName)
	case service.VerbStart:
		err = service.Start(service.DefaultName)
	case service.VerbStop:
		err = service.Stop(service.DefaultName)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	fmt.Fprintf(stdout, "ncserver: service %s: %s done\n", service.DefaultName, verb)
	return nil
}
