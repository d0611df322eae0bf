// Command ncclient talks to a running netcluster server: it shows and
// reloads its configuration, shows its channels, agents and counters
// through the control channel, and emits and listens to events.
//
//	ncclient [flags] COMMAND [ARGS]
//	ncclient [flags]                    (a REPL)
//
// Commands:
//
//	showconfig                  the configuration in force, secrets redacted
//	reloadconfig PATH           have the server read and apply a config file
//	showchannel CHANNEL         a channel's agents and counters
//	showclient CHANNEL ID       one agent
//	stats [-watch D]            counters per channel, totals, uptime
//	top                         a live full-screen view of the rates
//	channels                    the channel names
//	emit CHANNEL EVENT [DATA] [-text] [-n COUNT] [-interval D]
//	                            emit events (data JSON, or text; "-": stdin)
//	listen CHANNEL [PATTERN] [-n COUNT]
//	                            print each message as one JSON object per line
//	request CHANNEL EVENT [JSON]
//	                            send a request, print the first reply
//	reply CHANNEL PATTERN [-group G] [-concurrency N] [-n COUNT] -- COMMAND [ARGS...]
//	                            answer requests by running COMMAND
//
// Flags (anywhere on the line):
//
//	-socketdir DIR   the server's socket directory; default $NETCLUSTER_SOCKETDIR,
//	                 else the server's default rule
//	-json            machine-readable output
//	-timeout D       bound on connecting and on each request, and on each
//	                 command reply runs (default 5s)
//	-version         print the version (module version, commit, Go) and exit
//
// With no command, ncclient reads commands from its input: with line
// editing, history and tab completion when the input is a terminal. It
// accepts the original REPL's function syntax, showchannel("A"), as well
// as plain words, showchannel A. The exit status is 0 on success, 1 when a
// command fails and 2 for bad usage, with a one-line error on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/netcluster/netcluster/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ncclient:", oneLine(err))
		os.Exit(exitCode(err))
	}
}

// run is ncclient with its arguments and standard streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	if o.help {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if o.version {
		fmt.Fprintln(stdout, "ncclient", version.Get())
		return nil
	}
	c := newClient(o, stdout, stderr)
	c.in = stdin
	defer c.close()
	if o.cmd == "" {
		return c.repl(ctx, stdin)
	}
	cmd := lookup(o.cmd)
	if cmd == nil {
		return usageErrorf("unknown command %q;%s run ncclient -h for the list", o.cmd, didYouMean(o.cmd))
	}
	if o.count != 0 && cmd.name != "listen" && cmd.name != "reply" && cmd.name != "emit" && cmd.name != "bench" {
		return usageErrorf("-n applies only to emit, listen, reply and bench")
	}
	if o.benchFlags && cmd.name != "bench" {
		return usageErrorf("-pub, -sub and -size apply only to bench")
	}
	if (o.text || o.interval != 0) && cmd.name != "emit" {
		return usageErrorf("-text and -interval apply only to emit")
	}
	if (o.group != "" || o.concurrency != 0) && cmd.name != "reply" {
		return usageErrorf("-group and -concurrency apply only to reply")
	}
	if o.watch != 0 && cmd.name != "stats" {
		return usageErrorf("-watch applies only to stats")
	}
	if cmd.name == "reply" && len(o.command) == 0 {
		return usageErrorf("reply: missing COMMAND after -- (usage: %s)", cmd.synopsis())
	}
	if err := cmd.check(o.args); err != nil {
		return &usageError{err}
	}
	if o.watch != 0 {
		return watchStats(ctx, c, o.watch)
	}
	return cmd.run(ctx, c, o.args)
}

const usage = `usage: ncclient [flags] COMMAND [ARGS]
       ncclient [flags]            (a REPL: commands read from the input)

commands:
  showconfig                  the configuration in force, secrets redacted
  reloadconfig PATH           have the server read and apply a config file
  showchannel CHANNEL         a channel's agents and counters
  showclient CHANNEL ID       one agent
  stats [-watch D]            counters per channel, totals, uptime; -watch D:
                              one line per channel every D, with the rates
  bench CHANNEL [-pub N] [-sub N] [-size B] [-n COUNT]
                              a load test: N publishers (1) send COUNT messages
                              (100000) of B bytes (128) in all, N subscribers (1)
                              each receive them; prints msgs/s, MB/s and latency
                              percentiles, with a progress bar on a terminal
  top                         a live full-screen view: per channel msgs/s and
                              bytes/s in and out, agents, drops; network peers;
                              keys 1/2 (or tab) switch view, s sorts, q quits;
                              the lines of stats -watch 1s when not a terminal
  channels                    the channel names
  emit CHANNEL EVENT [DATA] [-text] [-n COUNT] [-interval D]
                              emit an event and say what was sent; DATA is
                              JSON (null if absent), plain text with -text,
                              "-" for standard input; -n COUNT times (1),
                              -interval D apart (0)
  listen CHANNEL [PATTERN] [-n COUNT]
                              print each message as one JSON object per line;
                              PATTERN defaults to .*, COUNT to 0 (no end)
  request CHANNEL EVENT [JSON]
                              send a request (data null if JSON is absent) and
                              print the first reply's data (-json: with its
                              origin); exit 1 on no responders or no reply
  reply CHANNEL PATTERN [-group G] [-concurrency N] [-n COUNT] -- COMMAND [ARGS...]
                              answer each matching request by running COMMAND
                              with the request's data on its input; its output
                              is the reply (JSON if it is JSON, else a string),
                              {"error": ...} if it fails; -group G: as a member
                              of queue group G; N commands at once (default 4);
                              stop after COUNT replies (0: no end)

flags:
  -socketdir DIR   the server's socket directory; default $NETCLUSTER_SOCKETDIR,
                   else the server's default rule
  -json            machine-readable output
  -timeout D       bound on connecting and on each request, and on each
                   command reply runs (default 5s)
  -version         print the version (module version, commit, Go) and exit
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine joins the lines of a multi-line error (several config problems,
// say) with "; ".
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}
