// Command ncbench runs netcluster and NATS side by side through the same
// scenarios and prints a table of medians with the ratio ours/theirs.
//
//	cd bench && go run ./cmd/ncbench -out results
//
// Each run starts a fresh server: ncserver over Unix sockets, or an
// embedded NATS server (nats-server/v2, default options) on 127.0.0.1 in a
// process of its own. Publishers and subscribers are ncbench itself,
// started again in worker mode, one process each. The systems alternate,
// round after round. With -out it writes latest.csv (every run),
// summary.csv, latest.md and latest.png (a bar chart) there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/netcluster/netcluster/bench/internal/harness"
)

func main() {
	if code, ok := harness.Child(os.Args[1:]); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ncbench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ncbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts    harness.Options
		only    = fs.String("only", "", "comma-separated scenario `IDs` to run (S0,S1,S2,S3,S1o,S3o,S4,S5,S6,S6b,S7,S8,S11,S11b,S12,S9,S10); default all")
		systems = fs.String("systems", "netcluster,nats", "comma-separated systems to run")
		out     = fs.String("out", "", "write latest.csv, summary.csv, latest.md and latest.png to this `directory`")
		quiet   = fs.Bool("q", false, "no progress lines")
	)
	fs.IntVar(&opts.Rounds, "rounds", 3, "runs per system per scenario, alternating the systems")
	fs.Float64Var(&opts.Scale, "scale", 1, "multiply the message counts (e.g. 10 for a longer run)")
	fs.DurationVar(&opts.Timeout, "timeout", time.Minute, "bound on each run of a scenario")
	fs.StringVar(&opts.NCServer, "ncserver", "", "ncserver `binary`; default: build it from the parent module")
	fs.BoolVar(&opts.NATSInline, "natsd-inline", false, "run the NATS server inside ncbench instead of its own process (S8 then skips NATS)")
	fs.StringVar(&opts.ProfileDir, "profile", "", "write CPU profiles of the workers and of netcluster's server to this `directory`")
	fs.BoolVar(&opts.Trace, "trace", false, "with -profile, also write execution traces")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	opts.Exe = exe
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	for _, s := range strings.Split(*systems, ",") {
		switch sys := harness.System(strings.TrimSpace(s)); sys {
		case harness.Netcluster, harness.NATS:
			opts.Systems = append(opts.Systems, sys)
		default:
			return fmt.Errorf("-systems: unknown system %q", s)
		}
	}
	if !*quiet {
		opts.Log = stderr
	}
	if opts.ProfileDir != "" {
		if err := os.MkdirAll(opts.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	h, err := harness.New(ctx, opts)
	if err != nil {
		return err
	}
	defer h.Close()
	res, err := h.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	res.WriteTable(stdout)
	if *out != "" {
		if err := res.WriteFiles(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s/latest.csv, summary.csv, latest.md, latest.png\n", *out)
	}
	return nil
}
