package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/systemd"
	"github.com/netcluster/netcluster/internal/version"
	"github.com/netcluster/netcluster/metrics"
	"github.com/netcluster/netcluster/server"
)

// serve runs the server on bus until ctx ends or a SIGINT or SIGTERM
// arrives, reloading on SIGHUP, and tells systemd (when it started us)
// when it is ready, reloading and stopping.
//
// Start-up is shown one way: on a terminal (stdout) as a banner, with the
// informational log records of the start held back; otherwise only as
// log records.
func serve(ctx context.Context, o *options, bus *config.Config, stdout, stderr io.Writer) error {
	interactive := isTerminal(stdout)
	quiet := newStartFilter(newLogger(o, stderr).Handler(), interactive)
	log := slog.New(quiet)
	log.Info("ncserver starting", append(version.Get().LogAttrs(), "pid", os.Getpid(), "config", configSource(o))...)

	passed, err := passedListeners(bus)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Bus: bus, Logger: log, Console: stdout, Listeners: passed, Metrics: metrics.HandlerWithLogger(log)})
	if err != nil {
		closeAll(passed)
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		srv.Close() // closes the passed listeners
		return err
	}
	if interactive {
		printBanner(stdout, stderr, o, srv)
	}
	quiet.done()
	notify := systemd.NewNotifier()
	ready := fmt.Sprintf("%d channels, node %s", len(srv.Addrs()), srv.NodeID())
	log.Info("ncserver ready", "channels", len(srv.Addrs()), "node", srv.NodeID(), "passed_sockets", len(passed))
	notifyOrWarn(log, "READY=1", notify.Ready(ready))
	stopWatchdog := startWatchdog(notify, srv, log)
	defer stopWatchdog()
	defer startMemret(log)()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			notifyOrWarn(log, "RELOADING=1", notify.Reloading())
			reload(srv, o, log)
			notifyOrWarn(log, "READY=1", notify.Ready(ready))
			continue
		case <-ctx.Done():
		}
		break
	}
	notifyOrWarn(log, "STOPPING=1", notify.Stopping())
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short", "err", err)
	}
	return nil
}

// configSource says where the config came from, for the start-up log.
func configSource(o *options) string {
	s := describeSource(o.config)
	if o.configFrom != "" {
		s += " (path from the " + o.configFrom + ")"
	}
	return s
}

func notifyOrWarn(log *slog.Logger, what string, err error) {
	if err != nil {
		log.Warn("could not notify systemd", "state", what, "err", err)
	}
}
