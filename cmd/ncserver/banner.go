package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync/atomic"

	"golang.org/x/term"

	"github.com/netcluster/netcluster/internal/version"
	"github.com/netcluster/netcluster/server"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printBanner tells a person at a terminal what the server is: its
// version, where it listens, its network and metrics.
func printBanner(stdout, stderr io.Writer, o *options, srv *server.Server) {
	fmt.Fprintf(stdout, "ncserver %s, pid %d\n", version.Get(), os.Getpid())
	fmt.Fprintf(stdout, "ncserver: %s, node %s\n", configSource(o), srv.NodeID())
	addrs := srv.Addrs()
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
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
	fmt.Fprintln(stdout, "ncserver: ready; Ctrl-C stops")
}

// startFilter holds back the informational records logged while the
// server starts, when the banner shows the same on a terminal. Warnings,
// errors and debug records pass; everything passes after done.
type startFilter struct {
	slog.Handler
	quiet *atomic.Bool
}

func newStartFilter(h slog.Handler, quiet bool) startFilter {
	f := startFilter{Handler: h, quiet: new(atomic.Bool)}
	f.quiet.Store(quiet)
	return f
}

func (f startFilter) done() { f.quiet.Store(false) }

func (f startFilter) held(l slog.Level) bool {
	return l >= slog.LevelInfo && l < slog.LevelWarn && f.quiet.Load()
}

func (f startFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return !f.held(l) && f.Handler.Enabled(ctx, l)
}

func (f startFilter) Handle(ctx context.Context, r slog.Record) error {
	if f.held(r.Level) {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}

func (f startFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return startFilter{Handler: f.Handler.WithAttrs(as), quiet: f.quiet}
}

func (f startFilter) WithGroup(name string) slog.Handler {
	return startFilter{Handler: f.Handler.WithGroup(name), quiet: f.quiet}
}
