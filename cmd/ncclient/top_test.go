package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
)

// buildNcclient builds the ncclient binary into a test directory.
func buildNcclient(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ncclient")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitScreen waits until the screen matches re, and returns the screen.
func waitScreen(t *testing.T, scr *screen, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := scr.String()
		if rx.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never matched %q:\n%s", re, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ncclient top in a pseudo-terminal: a full screen of the server's rates
// per channel, refreshed each second; keys switch the view, sort, quit.
func TestTopOnTerminal(t *testing.T) {
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	bin := buildNcclient(t)

	cmd := exec.Command(bin, "-socketdir", dir, "top")
	ptm, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 110})
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	scr := newScreen(30, 110)
	var raw syncBuffer
	copied := make(chan struct{})
	go func() { io.Copy(io.MultiWriter(scr, &raw), ptm); close(copied) }()
	defer func() { cmd.Process.Kill(); cmd.Wait(); <-copied }()

	s := waitScreen(t, scr, `(?m)^CHANNEL +AGENTS +MSGS/S IN +BYTES/S IN`)
	for _, want := range []string{"ncclient top", "[1] CHANNELS", "q: quit"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	// Load on channel A: its row shows the server's rate, not a dash.
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	a := agent(t, dir, "A")
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for i := 0; i < 2000 && ctx.Err() == nil; i++ { // bounded: 2000 emits, 10 s at most
			a.EmitRaw(ctx, "tick", []byte("0123456789"))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitScreen(t, scr, `(?m)^A +1 +[1-9][0-9.]* +[1-9][0-9.]*[kM]?B `)
	cancel()
	<-loaded

	ptm.Write([]byte("s"))
	waitScreen(t, scr, `sort \(msgs/s in\)`)
	ptm.Write([]byte("2"))
	s = waitScreen(t, scr, `network: off`)
	if !strings.Contains(s, "[2] NETWORK") {
		t.Errorf("network view not marked:\n%s", s)
	}
	ptm.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("top after q: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not quit top")
	}
	<-copied
	if !strings.Contains(raw.String(), "\x1b[?1049l") {
		t.Error("top did not leave the alternate screen")
	}
	cmd = exec.Command("true") // the deferred Kill and Wait are no-ops now
	cmd.Run()
}

// Not on a terminal, top prints the plain lines of stats -watch 1s, with
// the server's rates.
func TestTopPlain(t *testing.T) {
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	a := agent(t, dir, "B")
	ctx, cancel := context.WithTimeout(testCtx(t), 2500*time.Millisecond)
	defer cancel()
	loaded := make(chan struct{})
	go func() { // load while top runs: at most 250 emits, 2.5 s
		defer close(loaded)
		for i := 0; i < 250 && ctx.Err() == nil; i++ {
			a.EmitRaw(ctx, "x", []byte("0123456789"))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out, errs syncBuffer
	err := run(ctx, []string{"-socketdir", dir, "top"}, strings.NewReader(""), &out, &errs)
	<-loaded
	if err != nil {
		t.Fatal(err)
	}
	lines := out.String()
	if !regexp.MustCompile(`(?m)^\S+Z channel=B agents=1 in=[0-9.]+/s `).MatchString(lines) {
		t.Fatalf("no plain line for channel B:\n%s", lines)
	}
	// Some line shows the rate of that load.
	if !regexp.MustCompile(`channel=B agents=1 in=[1-9]`).MatchString(lines) {
		t.Errorf("no line shows B's rate:\n%s", lines)
	}
	if n := strings.Count(lines, "channel=TOTAL"); n < 2 {
		t.Errorf("%d rounds of lines in 2.5 s, want one a second:\n%s", n, lines)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// The network view shows the peers with their rates, and the NATS
// backbone's state when the server runs one.
func TestTopNetworkView(t *testing.T) {
	m := &topModel{view: viewNetwork, at: time.Now(), st: &control.Stats{
		NodeID: "n1",
		Network: &control.NetStats{Node: "n1", Name: "here", Group: "239.255.44.54:4454", Sealed: true,
			Rejected: map[string]uint64{"auth": 3},
			Rates:    &control.NetRates{Sent: 10, Received: 20},
			Peers: []control.NetPeerStats{{Node: "p2", Name: "there", Addr: "10.99.0.2:4454", Recovered: 4, LostMessages: 1,
				Rates: &control.PeerRates{Delivered: 12.5}}}},
		Backbone: &control.BackboneStats{State: "reconnecting", URL: "nats://127.0.0.1:4222", Reconnects: 2, LastError: "connection refused"},
	}}
	v := m.View()
	for _, want := range []string{
		"[2] NETWORK", "network 239.255.44.54:4454, node n1 (here)", "sealed",
		"sent 10.0/s", "received 20.0/s", "rejected datagrams: auth 3",
		"p2", "there", "12.5", "backbone NATS: RECONNECTING to nats://127.0.0.1:4222, reconnects 2", "last error: connection refused",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("network view lacks %q:\n%s", want, v)
		}
	}
}
