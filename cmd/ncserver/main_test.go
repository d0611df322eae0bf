package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/version"
	"go.uber.org/goleak"
)

// binDir holds binaries the tests build (binary_test.go); TestMain
// removes it.
var binDir string

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

type syncBuffer = testutil.SyncBuffer

// The embedded default, not on a terminal: the log says where each channel
// listens (and no banner repeats it on stdout), and the sockets are removed
// when the server stops.
func TestRunDefaultConfig(t *testing.T) {
	dir := testutil.ShortDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() { done <- dispatch(ctx, []string{"-socketdir", dir}, &out, &errs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errs.String(), "ncserver ready") {
		if time.Now().After(deadline) {
			t.Fatalf("not ready; stdout %q stderr %q", out.String(), errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, ch := range []string{"control", "A", "B"} {
		path := filepath.Join(dir, "netcluster-"+ch)
		if !strings.Contains(errs.String(), "msg=\"channel listening\" channel="+ch+" path="+path) {
			t.Errorf("the log does not say channel %s listens on %s:\n%s", ch, path, errs.String())
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("socket %s: %v", path, err)
		}
	}
	if want := fmt.Sprintf(`pid=%d config="embedded default config"`, os.Getpid()); !strings.Contains(errs.String(), want) {
		t.Errorf("the start-up log lacks %s:\n%s", want, errs.String())
	}
	if out.String() != "" {
		t.Errorf("a banner on stdout that is not a terminal, beside the log:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"control", "A", "B"} {
		if _, err := os.Stat(filepath.Join(dir, "netcluster-"+ch)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket of %s left behind: %v", ch, err)
		}
	}
}

// On a terminal, start-up is a banner, and the log holds its informational
// start-up records back rather than saying the same again.
func TestBannerOnTerminal(t *testing.T) {
	dir := testutil.ShortDir(t)
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer pts.Close()
	var screen syncBuffer
	read := make(chan struct{})
	go func() { io.Copy(&screen, ptm); close(read) }()
	ctx, cancel := context.WithCancel(context.Background())
	var errs syncBuffer
	done := make(chan error, 1)
	go func() { done <- dispatch(ctx, []string{"-socketdir", dir}, pts, &errs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.String(), "Ctrl-C stops") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner on the terminal: %q; stderr %q", screen.String(), errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		"ncserver " + version.Get().String(),
		fmt.Sprintf("pid %d", os.Getpid()),
		"embedded default config, node ",
		"channel A            listening on " + filepath.Join(dir, "netcluster-A"),
	} {
		if !strings.Contains(screen.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, screen.String())
		}
	}
	if strings.Contains(errs.String(), "channel listening") || strings.Contains(errs.String(), "ncserver starting") {
		t.Errorf("start-up shown twice: banner and log\n%s", errs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs.String(), "shutting down") {
		t.Errorf("records after the start are held back too: %q", errs.String())
	}
	pts.Close()
	ptm.Close()
	<-read
}

func TestArgs(t *testing.T) {
	seed := filepath.Join("..", "..", "config", "testdata", "seed-sample.jsonc")
	good := filepath.Join(t.TempDir(), "good.json")
	os.WriteFile(good, []byte(`{"connecttonet": true, "addr": "239.255.1.2", "channels": {"A": {}}}`), 0o644)
	small := filepath.Join(t.TempDir(), "small.json")
	os.WriteFile(small, []byte(`{"connecttonet": true, "netpayload": 512}`), 0o644)
	// With nats and no addr, the seed's group is not used: no multicast.
	natsOnly := filepath.Join(t.TempDir(), "nats.json")
	os.WriteFile(natsOnly, []byte(`{"connecttonet": true, "nats": {"urls": ["nats://127.0.0.1:1"]}, "channels": {"A": {"propagatetonet": true, "durable": {}}}}`), 0o644)
	natsBad := filepath.Join(t.TempDir(), "natsbad.json")
	os.WriteFile(natsBad, []byte("{\"nats\": {\n  \"urls\": [\"http://h\"]}}"), 0o644)
	loopOff := filepath.Join(t.TempDir(), "loopoff.json")
	os.WriteFile(loopOff, []byte(`{"connecttonet": true, "addr": "239.255.1.2", "multicastloop": false, "netoffload": false}`), 0o644)
	loopBad := filepath.Join(t.TempDir(), "loopbad.json")
	os.WriteFile(loopBad, []byte("{\n  \"netoffload\": \"no\"}"), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{\n  \"prot\": 1,\n}"), 0o644)
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		// The seed sample parses, but names the reserved group 224.0.0.0
		// with connecttonet on: the server would refuse to start.
		{"check seed sample", []string{"-check", seed}, "", `would not start: addr "224.0.0.0"`},
		{"check flag form", []string{"-check", "-config", seed}, "", "239.255.44.54"},
		{"check network config", []string{"-check", good}, "ok (2 channels)", ""},
		{"check payload too small for maxnetmessage", []string{"-check", small}, "", "netpayload 512, maxnetmessage 16777216"},
		{"check nats config", []string{"-check", natsOnly}, "ok (2 channels)", ""},
		{"check bad nats url", []string{"-check", natsBad}, "", `natsbad.json:2:12: nats.urls[0]: want the scheme nats://`},
		{"check default", []string{"-check"}, "embedded default config: ok", ""},
		{"check multicastloop and netoffload off", []string{"-check", loopOff}, "ok (1 channels)", ""},
		{"check bad netoffload", []string{"-check", loopBad}, "", `loopbad.json:2:17: netoffload: want true or false, got "no"`},
		{"bad key", []string{"-check", bad}, "", `bad.json:2:3: prot: unknown key`},
		{"missing file", []string{"-check", "/nonexistent/nc.json"}, "", "/nonexistent/nc.json"},
		{"two files", []string{"a.json", "b.json"}, "", "too many arguments"},
		{"config twice", []string{"-config", "a.json", "b.json"}, "", "config given twice"},
		{"bad log format", []string{"-log-format", "xml"}, "", `-log-format "xml"`},
		{"unknown flag", []string{"-nope"}, "", "flag provided but not defined: -nope"},
		{"service verb off Windows", []string{"install"}, "", "only available on Windows"},
		{"verb with extra args", []string{"stop", "now"}, "", "stop takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs syncBuffer
			err := dispatch(context.Background(), tc.args, &out, &errs)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error()+errs.String(), tc.wantErr)):
				t.Fatalf("error %v (stderr %q), want %q", err, errs.String(), tc.wantErr)
			case !strings.Contains(out.String(), tc.wantOut):
				t.Fatalf("stdout %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

// -h is not an error; bad usage is a usageError (exit status 2).
func TestUsageErrors(t *testing.T) {
	var out, errs syncBuffer
	if err := dispatch(context.Background(), []string{"-h"}, &out, &errs); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errs.String(), "usage: ncserver") {
		t.Fatalf("-h: %v, stderr %q", err, errs.String())
	}
	for _, args := range [][]string{{"-nope"}, {"a", "b"}, {"-log-format", "xml"}, {"-log-level", "loud"}} {
		var usage *usageError
		if err := dispatch(context.Background(), args, &out, &errs); !errors.As(err, &usage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestServiceArgs(t *testing.T) {
	reg := func() (string, error) { return `C:\nc\config.json`, nil }
	if got, from := serviceArgs([]string{"-log-level", "debug"}, reg); strings.Join(got, " ") != `-config C:\nc\config.json -log-level debug` || from != "registry" {
		t.Errorf("registry path not added: %q, from %q", got, from)
	}
	if got, from := serviceArgs([]string{"-config", "x.json"}, reg); strings.Join(got, " ") != "-config x.json" || from != "" {
		t.Errorf("flag should win over registry: %q, from %q", got, from)
	}
	if got, _ := serviceArgs(nil, func() (string, error) { return "", nil }); len(got) != 0 {
		t.Errorf("no registry value: %q", got)
	}
}
