package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/netcluster/netcluster/control"
)

const (
	prompt = "nc> "
	// completionTimeout bounds the requests tab completion makes.
	completionTimeout = time.Second
)

// repl reads commands from stdin until it ends, exit or quit, or ctx ends.
// When stdin is a terminal it edits lines (history, tab completion of
// commands, channel names and agent ids); otherwise it reads plain lines
// and, at the end, fails if any command failed. Its control client
// reconnects when a command needs it and the REPL says when the connection drops and
// when it is back.
//
// stdin is read by a goroutine of the REPL's; if ctx ends while that
// goroutine waits for input, it is left to end with the input.
func (c *client) repl(ctx context.Context, stdin io.Reader) error {
	c.inREPL = true
	notices := make(chan string, 16)
	c.ctlOpts = control.Options{
		Reconnect: true,
		// Called from the client's goroutines: hand over, never block.
		OnState: func(connected bool, err error) {
			c.down.Store(!connected)
			msg := "connection to the server is back"
			if !connected {
				msg = fmt.Sprintf("connection to the server lost (%v); reconnecting", err)
			}
			select {
			case notices <- msg:
			default:
			}
		},
	}
	// A REPL without a server is no use: fail now, naming the socket.
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	_, err := c.control(cctx)
	cancel()
	if err != nil {
		return err
	}
	if f, ok := stdin.(*os.File); ok {
		if fd, ok := fdOf(f); ok && term.IsTerminal(fd) {
			return c.termREPL(ctx, f, fd, notices)
		}
	}
	return c.plainREPL(ctx, stdin, notices)
}

// fdOf returns f's descriptor without putting it in blocking mode, as Fd
// would.
func fdOf(f *os.File) (int, bool) {
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var fd int
	if sc.Control(func(p uintptr) { fd = int(p) }) != nil {
		return 0, false
	}
	return fd, true
}

// lineFeed reads one line each time it is asked, on a goroutine of its
// own, so that the REPL can stop waiting when ctx ends.
type lineFeed struct {
	ask  chan struct{}
	line chan lineResult
}

type lineResult struct {
	text string
	err  error
}

func newLineFeed(read func() (string, error)) *lineFeed {
	f := &lineFeed{ask: make(chan struct{}), line: make(chan lineResult, 1)}
	go func() {
		for range f.ask {
			text, err := read()
			f.line <- lineResult{text, err}
			if err != nil {
				return
			}
		}
	}()
	return f
}

// loop runs the REPL: it asks feed for lines and runs them, printing
// notices meanwhile, until the input ends, exit, or ctx ends. It returns
// how many commands ran and how many failed.
func (c *client) loop(ctx context.Context, feed *lineFeed, notices <-chan string, notify func(string), fail func(error)) (ran, failed int) {
	defer close(feed.ask)
	for {
		feed.ask <- struct{}{}
		var r lineResult
		for got := false; !got; {
			select {
			case <-ctx.Done():
				return ran, failed
			case n := <-notices:
				notify(n)
			case r = <-feed.line:
				got = true
			}
		}
		if r.err != nil && r.text == "" {
			return ran, failed
		}
		quit, err := c.execLine(ctx, r.text)
		if quit {
			return ran, failed
		}
		if name, _, _ := parseLine(r.text); name != "" {
			ran++
		}
		if err != nil {
			failed++
			fail(err)
		}
		if r.err != nil {
			return ran, failed
		}
	}
}

func (c *client) plainREPL(ctx context.Context, stdin io.Reader, notices <-chan string) error {
	br := bufio.NewReader(stdin)
	feed := newLineFeed(func() (string, error) {
		s, err := br.ReadString('\n')
		return strings.TrimRight(s, "\r\n"), err
	})
	ran, failed := c.loop(ctx, feed, notices,
		func(n string) { fmt.Fprintln(c.errw, "ncclient:", n) },
		func(err error) { fmt.Fprintln(c.errw, "ncclient:", oneLine(err)) })
	if failed > 0 {
		return fmt.Errorf("%d of %d commands failed", failed, ran)
	}
	return nil
}

func (c *client) termREPL(ctx context.Context, f *os.File, fd int, notices <-chan string) error {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return c.plainREPL(ctx, f, notices)
	}
	defer term.Restore(fd, old)
	k := newKeys(f)
	c.keys = k
	raw := c.out
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{k, c.out}, prompt)
	t.History = keysHistory{k: k, hist: t.History}
	if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
		t.SetSize(w, h)
	}
	t.AutoCompleteCallback = c.completer(ctx, t)
	c.out, c.errw = t, t
	fmt.Fprintf(t, "netcluster control at %s\ntype help for the commands, exit to leave\n", c.controlPath())
	feed := newLineFeed(func() (string, error) {
		for {
			s, err := t.ReadLine()
			if errors.Is(err, term.ErrPasteIndicator) {
				err = nil
			}
			if err == nil && k.dropped() {
				continue // Ctrl-C: the line is dropped
			}
			return s, err
		}
	})
	c.loop(ctx, feed, notices,
		func(n string) { fmt.Fprintf(t, "-- %s\n", n) },
		func(err error) { fmt.Fprintf(t, "error: %s\n", oneLine(err)) })
	// Ctrl-D or exit: leave the shell's prompt a line of its own.
	fmt.Fprint(raw, "\r\n")
	return nil
}

// execLine runs one line of the REPL. quit reports exit or quit.
func (c *client) execLine(ctx context.Context, line string) (quit bool, err error) {
	name, args, err := parseLine(line)
	if err != nil {
		return false, err
	}
	switch strings.TrimPrefix(name, ".") {
	case "":
		return false, nil
	case "exit", "quit":
		return true, nil
	case "help":
		c.help()
		return false, nil
	}
	cmd := lookup(name)
	switch {
	case cmd == nil:
		return false, fmt.Errorf("unknown command %q;%s type help", name, didYouMean(name))
	case cmd.name == "listen" && c.keys != nil:
		// On a terminal, listen runs until Ctrl-C.
	case !cmd.repl:
		return false, fmt.Errorf("%s is not available here; run ncclient %s", name, cmd.synopsis())
	}
	if err := cmd.check(args); err != nil {
		return false, err
	}
	if c.keys == nil {
		return false, cmd.run(ctx, c, args)
	}
	// On a terminal, Ctrl-C stops the command and the REPL goes on.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.keys.running(cancel)
	defer c.keys.running(nil)
	err = cmd.run(cctx, c, args)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		err = errInterrupted
	}
	return false, err
}

func (c *client) help() {
	tw := newTable(c.out)
	for _, cmd := range commands {
		if cmd.repl {
			fmt.Fprintf(tw, "  %s\t%s\n", cmd.synopsis(), cmd.help)
		}
	}
	if c.keys != nil {
		fmt.Fprintf(tw, "  %s\t%s\n", "listen CHANNEL [PATTERN]", "print each message as one JSON object per line, until ctrl-C")
	}
	fmt.Fprintf(tw, "  help\tthis list\n  exit, quit\tleave (also ctrl-D on an empty line; ctrl-C drops the line or stops a command)\n")
	fmt.Fprintln(c.out, "commands, as plain words or as functions: showchannel A, showchannel(\"A\")")
	tw.Flush()
	fmt.Fprintln(c.out, "tab completes commands, channel names and agent ids; up and down recall history")
}
