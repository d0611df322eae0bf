// Command ncserver runs a netcluster server: one socket per channel of its
// configuration, routing events between the agents connected to them.
//
//	ncserver [flags] [CONFIG]
//	ncserver install [-config CONFIG] | uninstall | start | stop   (Windows)
//
// With no config file it runs the embedded default (channels control, A
// and B; network off). See README.md for the configuration reference.
// On Windows the verbs manage the "ncserver" service, which finds its
// config in its -config argument, else in the registry value conf under
// HKLM\Software\Netcluster, else runs the embedded default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/version"
	"github.com/netcluster/netcluster/server"
)

// Exit status: 0 on success (and for -h), 2 for bad usage, 1 when the
// server fails.
func main() {
	err := dispatch(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "ncserver: %v (ncserver -h for help)\n", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ncserver:", errorText(err))
		os.Exit(1)
	}
}

// usageError is a bad command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// shutdownTimeout bounds the graceful shutdown on SIGINT and SIGTERM.
const shutdownTimeout = 5 * time.Second

// options are ncserver's command-line settings.
type options struct {
	config    string
	check     bool
	logFormat string
	logLevel  slog.Level
	socketDir string
	version   bool
	// configFrom says where config came from when not the command line:
	// "registry" (the Windows service's HKLM\Software\Netcluster).
	configFrom string
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("ncserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by main
	help := false
	fs.BoolVar(&help, "h", false, "show this help")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ncserver [flags] [CONFIG]\n\nRuns a netcluster server; with no CONFIG, the embedded default.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.config, "config", "", "config `file` (JSON with comments); also accepted as the only argument")
	fs.BoolVar(&o.check, "check", false, "validate the config and exit")
	fs.BoolVar(&o.version, "version", false, "print the version (module version, commit, Go) and exit")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&o.socketDir, "socketdir", "", "socket `directory`, overriding the config's socketdir")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err}
	}
	if help {
		fs.SetOutput(stderr)
		fs.Usage()
		return nil, flag.ErrHelp
	}
	switch rest := fs.Args(); {
	case len(rest) > 1:
		return nil, &usageError{fmt.Errorf("too many arguments: %q; want at most one config file", rest)}
	case len(rest) == 1 && o.config != "":
		return nil, &usageError{fmt.Errorf("config given twice: -config %q and %q", o.config, rest[0])}
	case len(rest) == 1:
		o.config = rest[0]
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, &usageError{fmt.Errorf("-log-format %q: want text or json", o.logFormat)}
	}
	return o, nil
}

func loadConfig(o *options) (*config.Config, error) {
	var bus *config.Config
	if o.config == "" {
		bus = config.Default()
	} else {
		var err error
		if bus, err = config.Load(o.config); err != nil {
			return nil, err
		}
	}
	if o.socketDir != "" {
		bus.SocketDir = o.socketDir
	}
	return bus, nil
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.logLevel}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// run is ncserver: it returns when the server stops.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runFrom(ctx, args, "", stdout, stderr)
}

// runFrom is run for a config path that came from elsewhere than the
// command line (from: "registry"), to say so in the log.
func runFrom(ctx context.Context, args []string, from string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	o.configFrom = from
	if o.version {
		fmt.Fprintln(stdout, "ncserver", version.Get())
		return nil
	}
	bus, err := loadConfig(o)
	if err != nil {
		return err
	}
	if o.check {
		if err := server.CheckNetwork(bus); err != nil {
			return fmt.Errorf("%s: parses, but the server would not start: %w", describeSource(o.config), err)
		}
		fmt.Fprintf(stdout, "%s: ok (%d channels)\n", describeSource(o.config), len(bus.Channels))
		return nil
	}
	return serve(ctx, o, bus, stdout, stderr)
}

// reload applies the config file ncserver was started with again.
func reload(srv *server.Server, o *options, log *slog.Logger) {
	if o.config == "" {
		log.Warn("SIGHUP ignored: running on the embedded default config, no file to reload")
		return
	}
	bus, err := loadConfig(o)
	if err == nil {
		err = srv.Reload(bus)
	}
	if err != nil {
		log.Error("reload failed; the running config is unchanged", "err", err)
		return
	}
	log.Info("config reloaded", "path", o.config)
}

// plaintextWarning is printed at start when the network is on without keys.
const plaintextWarning = `
ncserver: ******************************************************************
ncserver: WARNING: the network is on WITHOUT KEYS: traffic is PLAINTEXT.
ncserver: Anyone on the network can read every message and inject messages
ncserver: into every channel that accepts network input. Add "keys" (32
ncserver: random bytes in base64, e.g. from: openssl rand -base64 32).
ncserver: ******************************************************************

`

func describeSource(path string) string {
	if path == "" {
		return "embedded default config"
	}
	return "config " + path
}

// errorText is err's message for a line that starts "ncserver:": the
// "netcluster: " prefixes that each wrapping package adds say nothing more
// there, so "netcluster: channel A: netcluster: listen on …" reads
// "channel A: listen on …".
func errorText(err error) string {
	return strings.ReplaceAll(err.Error(), "netcluster: ", "")
}
