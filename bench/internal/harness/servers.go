package harness

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

// System is one of the two message systems compared.
type System string

// The systems.
const (
	Netcluster System = "netcluster"
	NATS       System = "nats"
	// Relay is no message system: the bare relay of S0, the ceiling.
	Relay System = "relay"
)

// busServer is a running server of either system.
type busServer struct {
	addr string // socket directory (netcluster) or URL (NATS)
	pid  int    // 0 when the server runs inside ncbench
	stop func()
}

// natsOptions are the NATS server's options: defaults, except a random
// port on the loopback address and no signal handlers or logs.
func natsOptions() *natsserver.Options {
	return &natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true}
}

// startServer starts a fresh server of sys for one run. tag names the
// run's files.
func (h *Harness) startServer(ctx context.Context, sys System, tag string) (*busServer, error) {
	if sys == NATS {
		if h.opts.NATSInline {
			ns, err := natsserver.NewServer(natsOptions())
			if err != nil {
				return nil, err
			}
			ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				ns.Shutdown()
				return nil, errors.New("nats-server not ready")
			}
			return &busServer{addr: ns.ClientURL(), stop: func() { ns.Shutdown(); ns.WaitForShutdown() }}, nil
		}
		p, err := h.self(ctx, "natsd", "natsd")
		if err != nil {
			return nil, err
		}
		url, err := p.expect(ctx, lineReady+" ")
		if err != nil {
			p.stop(false, 5*time.Second)
			return nil, err
		}
		return &busServer{addr: url, pid: p.pid(), stop: func() { p.stop(false, 5*time.Second) }}, nil
	}

	dir, err := os.MkdirTemp(h.tmp, "s")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "ncserver.jsonc")
	if err := os.WriteFile(cfg, BusConfigFile(dir), 0o644); err != nil {
		return nil, err
	}
	var p *proc
	var ready string
	if h.opts.ProfileDir != "" {
		prof := filepath.Join(h.opts.ProfileDir, tag+"-ncserver.cpu.pprof")
		args := []string{"ncserve", "-socketdir", dir, "-cpuprofile", prof}
		if h.opts.Trace {
			args = append(args, "-trace", strings.TrimSuffix(prof, ".cpu.pprof")+".trace")
		}
		p, err = h.self(ctx, "ncserve", args...)
		ready = lineReady
	} else {
		p, err = startProc(ctx, "ncserver", h.ncserver, cfg)
	}
	if err != nil {
		return nil, err
	}
	if ready != "" {
		_, err = p.expect(ctx, ready)
	} else {
		// ncserver prints its banner only to a terminal: wait until
		// the bench channel's socket accepts a connection.
		err = waitSocket(ctx, filepath.Join(dir, "netcluster-"+Channel))
	}
	if err != nil {
		p.stop(true, 5*time.Second)
		return nil, err
	}
	return &busServer{addr: dir, pid: p.pid(), stop: func() {
		p.stop(true, 10*time.Second)
		os.RemoveAll(dir)
	}}, nil
}

// self starts ncbench again in one of its child modes.
func (h *Harness) self(ctx context.Context, name string, args ...string) (*proc, error) {
	return startProc(ctx, name, h.opts.Exe, append(append([]string(nil), h.opts.ExeArgs...), args...)...)
}

// Child runs ncbench's child modes: "worker", "natsd" (a NATS server in
// its own process, printing "READY url") and "ncserve" (ncserver's server
// with a CPU profile, for -profile). ok is false for any other args.
func Child(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "worker":
		return Worker(args[1:], os.Stdin, os.Stdout), true
	case "natsd":
		return report(runNATSd(args[1:], os.Stdin, os.Stdout)), true
	case "ncserve":
		return report(runNCServe(args[1:], os.Stdin, os.Stdout)), true
	}
	return 0, false
}

func report(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stdout, lineErr+err.Error())
		return 1
	}
	return 0
}

// runNATSd runs a NATS server until its standard input ends; "-js DIR"
// turns JetStream on with its store in DIR.
func runNATSd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("natsd", flag.ContinueOnError)
	js := fs.String("js", "", "JetStream store `dir` (JetStream off if empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := natsOptions()
	if *js != "" {
		opts.JetStream, opts.StoreDir = true, *js
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats-server not ready")
	}
	fmt.Fprintln(stdout, lineReady, ns.ClientURL())
	io.Copy(io.Discard, stdin)
	return nil
}

// runNCServe runs netcluster's server on the bench configuration, as
// ncserver does, until SIGTERM or the end of its standard input, with a
// CPU profile.
func runNCServe(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("ncserve", flag.ContinueOnError)
	dir := fs.String("socketdir", "", "socket directory")
	file := fs.String("config", "", "ncserver config `file` (instead of the bench configuration in -socketdir)")
	prof := fs.String("cpuprofile", "", "CPU profile `file`")
	tr := fs.String("trace", "", "execution trace `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bus := BusConfig(*dir)
	if *file != "" {
		var err error
		if bus, err = config.Load(*file); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Config{Bus: bus, Console: io.Discard})
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *tr != "" {
		stop, err := startTrace(*tr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintln(stdout, lineReady)
	go func() {
		io.Copy(io.Discard, bufio.NewReader(stdin))
		cancel()
	}()
	<-ctx.Done()
	return nil
}

// buildNCServer builds cmd/ncserver of the netcluster module this module
// replaces (the parent directory) into dir, as the packages build it
// (packaging/stage.go: no cgo, -trimpath, stripped): S8 measures the
// server's RSS, and a binary linked with the C library and its loader
// maps some 2 MiB more of files than the one users get.
func buildNCServer(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ncserver")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/ncserver")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ncserver in %s: %w\n%s", root, err, b)
	}
	return bin, nil
}

// moduleRoot returns the directory of the netcluster module, as the go
// command resolves it from the working directory (the replace directive
// of the bench module).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/netcluster/netcluster").Output()
	if err != nil {
		return "", fmt.Errorf("locating the netcluster module (run ncbench inside the bench module, or pass -ncserver): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// waitSocket waits until a Unix socket at path accepts a connection.
func waitSocket(ctx context.Context, path string) error {
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ncserver: waiting for %s: %w", path, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
