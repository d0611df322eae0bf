package main

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
)

// TestREPLStdin drives the REPL through plain input, as a script would.
func TestREPLStdin(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, nil, dir)
	agent(t, dir, "A", netcluster.WithAgentID("watcher"))
	got := listenAll(t, agent(t, dir, "B"), "ev.*")
	path := writeFile(t, testutil.ShortDir(t), "nc.jsonc", `{"channels": {"A": {"propagatetochannels": ".*"}, "B": {}, "E": {}}}`)

	input := strings.Join([]string{
		"showconfig()",
		`showchannel("A")`,
		"showchannel A",
		`showclient("A", "watcher")`,
		"showclient A watcher;",
		"",
		`reloaconfig("` + path + `")`,
		"channels",
		`emit("A", "ev", {"x": 1})`,
		`emit A ev2 {"y": [1, 2]}`,
		"stats",
		"help",
		"bogus",
		"listen A",
		`showchannel("Z")`,
		"exit",
		"showconfig", // after exit: never runs
	}, "\n") + "\n"
	out, errout, err := ncclient(t, input, "-socketdir", dir)
	if err == nil || err.Error() != "3 of 14 commands failed" {
		t.Errorf("error %v", err)
	}
	for _, re := range []string{
		`(?m)^controlsocketmode +0600$`,
		`(?s)channel A at .*watcher.*channel A at .*watcher`,
		`(?s)(agent +watcher\n.*){2}`,
		`(?m)^reloaded ` + regexp.QuoteMeta(path) + `: channels A, B, E, control\nadded: +E$`,
		`(?m)^A\nB\nE\ncontrol$`,
		`(?m)^E +0 +0`,
		`(?m)^  showclient CHANNEL ID +one agent of a channel$`,
		`(?m)^  exit, quit +leave`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	if strings.Count(out, "controlsocketmode") != 1 {
		t.Error("a command after exit ran")
	}
	wantErr := []string{
		`ncclient: unknown command "bogus"; type help`,
		`ncclient: listen is not available here; run ncclient listen CHANNEL [PATTERN] [-n COUNT]`,
		`ncclient: showchannel: unknown channel "Z"`,
	}
	lines := strings.Split(strings.TrimSpace(errout), "\n")
	if len(lines) != len(wantErr) {
		t.Fatalf("stderr:\n%s", errout)
	}
	for i, w := range wantErr {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("stderr line %q; want %q", lines[i], w)
		}
	}
	if m := got.wait(t); m.Event != "ev" || string(m.Data) != `{"x":1}` {
		t.Errorf("got %+v", m)
	}
	if m := got.wait(t); m.Event != "ev2" || string(m.Data) != `{"y":[1,2]}` {
		t.Errorf("got %+v", m)
	}
	if _, ok := srv.Channel("E"); !ok {
		t.Error("reloaconfig did not reload")
	}
}

// TestREPLStdinEnd: the REPL ends with its input, even without exit or a
// final newline.
func TestREPLStdinEnd(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	out, _, err := ncclient(t, "channels", "-socketdir", dir, "-json")
	if err != nil || !strings.Contains(out, `"control"`) {
		t.Errorf("%v %q", err, out)
	}
}

// terminal drives the REPL through a pseudo-terminal.
type terminal struct {
	t    *testing.T
	ptmx io.Writer
	out  *syncBuffer
	mark int // output before mark was matched already
}

func (tm *terminal) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.ptmx, s); err != nil {
		tm.t.Fatal(err)
	}
}

// expect waits for output matching re after what earlier calls matched.
func (tm *terminal) expect(re string) {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := tm.out.String()
		if loc := rx.FindStringIndex(s[tm.mark:]); loc != nil {
			tm.mark += loc[1]
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("no output matching %s; got after the last match:\n%q", re, s[tm.mark:])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestREPLTerminal drives the REPL through a pseudo-terminal: function
// syntax, plain words, tab completion of commands, channel names and
// agent ids, history, and a server restart.
func TestREPLTerminal(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	bus := parseBus(t, `{"channels": {"A": {}, "Alpha": {}, "B": {}}}`)
	srv := startServer(t, bus.Clone(), dir)
	agent(t, dir, "A", netcluster.WithAgentID("watcher"))

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 250})
	out := new(syncBuffer)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(out, ptmx)
	}()
	done := make(chan error, 1)
	finished := make(chan struct{})
	ctx := testCtx(t)
	go func() {
		defer close(finished)
		done <- run(ctx, []string{"-socketdir", dir}, tty, tty, tty)
	}()
	defer func() {
		// ptmx is in blocking mode: closing it would not end the read.
		// Closing the terminal side ends the REPL's reads (if it still
		// runs) and, with no terminal side left open, the master's.
		tty.Close()
		<-finished
		<-copied
		ptmx.Close()
	}()
	tm := &terminal{t: t, ptmx: ptmx, out: out}

	tm.expect(`type help for the commands`)
	tm.expect(`nc> `)

	// Function syntax and plain words.
	tm.send("showconfig()\r")
	tm.expect(`controlsocketmode +0600`)
	tm.send("showchannel A\r")
	tm.expect(`channel A at .*netcluster-A`)
	tm.expect(`watcher +\d+`)

	// Completion of a channel name inside function syntax: only the
	// completed name finds the channel.
	tm.send(`showchannel("Al` + "\t" + `")` + "\r")
	tm.expect(`channel Alpha at .*netcluster-Alpha`)

	// Completion of a command, then of an agent id.
	tm.send("showcl\tA wat\t\r")
	tm.expect(`agent +watcher\r?\n`)
	tm.expect(`channel +A\r?\n`)

	// Several matches are listed; ctrl-U clears the line.
	tm.send("show\t\t")
	tm.expect(`showchannel  showclient  showconfig`)
	tm.send("\x15channels\r")
	tm.expect(`Alpha\r?\nB\r?\ncontrol`)

	// History: up arrow recalls the last command.
	tm.send("\x1b[A\r")
	tm.expect(`Alpha\r?\nB\r?\ncontrol`)

	// Errors are one line and the REPL goes on.
	tm.send(`showchannel("Z")` + "\r")
	tm.expect(`error: showchannel: unknown channel "Z"`)

	// A server restart: the REPL says so, and the next command works.
	srv.Close()
	tm.expect(`-- connection to the server lost`)
	srv2 := startServer(t, bus.Clone(), dir)
	tm.send("stats\r")
	tm.expect(`node ` + srv2.NodeID())
	tm.expect(`-- connection to the server is back|TOTAL`)

	tm.send("exit\r")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit did not end the REPL")
	}
}
