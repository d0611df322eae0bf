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
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/metrics"
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
		fmt.Fprintln(os.Stderr, "ncserver:", err)
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
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
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
	log := newLogger(o, stderr)
	srv, err := server.New(server.Config{Bus: bus, Logger: log, Console: stdout, Metrics: metrics.HandlerWithLogger(log)})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	addrs := srv.Addrs()
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "ncserver: %s, node %s\n", describeSource(o.config), srv.NodeID())
	for _, name := range names {
		fmt.Fprintf(stdout, "ncserver: channel %-12s listening on %s\n", name, addrs[name])
	}
	if ns := srv.Stats().Network; ns != nil {
		fmt.Fprintf(stdout, "ncserver: network %s, node %s name %q, unicast %s, sealed %v\n", ns.Group, ns.Node, ns.Name, ns.Addr, ns.Sealed)
		if !ns.Sealed {
			fmt.Fprint(stderr, plaintextWarning)
		}
	}
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(stdout, "ncserver: metrics on http://%s/metrics\n", a)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(srv, o, log)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short", "err", err)
	}
	return nil
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
