package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/netcluster/netcluster/internal/testutil"
)

// The REPL on a terminal: Ctrl-C drops the line being typed (and keeps it
// out of the history), listen runs until Ctrl-C, emit says what it sent,
// an unknown command gets a suggestion, a command fails at once when the
// server is down (not after -timeout), and Ctrl-D on an empty line leaves
// with a newline.
func TestREPLKeys(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, nil, dir)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 200})
	out := new(syncBuffer)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(out, ptmx)
	}()
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// A long timeout: waiting for the server would show.
		done <- run(testCtx(t), []string{"-socketdir", dir, "-timeout", "60s"}, tty, tty, tty)
	}()
	defer func() {
		tty.Close()
		<-finished
		<-copied
		ptmx.Close()
	}()
	tm := &terminal{t: t, ptmx: ptmx, out: out}
	tm.expect(`nc> `)

	// Ctrl-C drops the line: nothing runs, and the REPL goes on.
	tm.send("showconfig\x03")
	tm.expect(`nc> `)
	tm.send("channels\r")
	tm.expect(`A\r?\nB\r?\ncontrol`)
	// The dropped line is not in the history: up recalls "channels".
	tm.send("\x1b[A\r")
	tm.expect(`A\r?\nB\r?\ncontrol`)
	if strings.Contains(out.String(), "controlsocketmode") {
		t.Fatal("the line ended by Ctrl-C ran")
	}

	// did you mean
	tm.send("shwoconfig\r")
	tm.expect(`error: unknown command "shwoconfig"; did you mean "showconfig"\? type help`)

	// emit confirms
	tm.send(`emit A ev {"n": 1}` + "\r")
	tm.expect(`emitted "ev" on A \(8 bytes\): \{"n":1\}`)

	// listen runs until Ctrl-C.
	tm.send("listen B\r")
	waitListening(t, srv, "B", ".*")
	a := agent(t, dir, "B")
	if err := a.Emit(context.Background(), "hello", "world"); err != nil {
		t.Fatal(err)
	}
	tm.expect(`\{"event":"hello","channel":"B","data":"world"`)
	tm.send("\x03")
	tm.expect(`nc> `)
	tm.send("channels\r")
	tm.expect(`A\r?\nB\r?\ncontrol`)

	// The server goes away: a command fails at once, naming the socket.
	srv.Close()
	tm.expect(`-- connection to the server lost`)
	start := time.Now()
	tm.send("stats\r")
	tm.expect(`error: stats: the server is not running: .*netcluster-control`)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stats took %v to fail with the server down", d)
	}
	tm.send("emit A ev\r")
	tm.expect(`error: emit: .*netcluster-A`)

	// Ctrl-D on an empty line leaves, with a newline.
	tm.send("\x04")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-D did not end the REPL")
	}
	tm.expect(`nc> \r\n`)
}
