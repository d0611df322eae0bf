package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/server"
)

func TestEmit(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	got := listenAll(t, agent(t, dir, "A"), ".*")
	for _, tc := range []struct {
		args      []string
		data, out string
	}{
		{[]string{"emit", "A", "ev"}, `null`, `emitted "ev" on A (4 bytes): null` + "\n"},
		{[]string{"emit", "A", "ev", `{"x": [1, 2]}`}, `{"x":[1,2]}`, `emitted "ev" on A (13 bytes): {"x":[1,2]}` + "\n"},
		{[]string{"emit", "A", "ev", "-5"}, `-5`, `emitted "ev" on A (2 bytes): -5` + "\n"},
		{[]string{"-json", "emit", "A", "ev", `"text"`}, `"text"`, `{"bytes":6,"channel":"A","count":1,"event":"ev","text":false}` + "\n"},
	} {
		out, errout, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
		if err != nil || out != tc.out || errout != "" {
			t.Fatalf("%q: %v, output %q %q; want %q", tc.args, err, out, errout, tc.out)
		}
		m := got.wait(t)
		if m.Event != "ev" || string(m.Data) != tc.data || !m.JSON || m.Channel != "A" || !strings.HasPrefix(m.Agent, "ncclient-") {
			t.Errorf("%q: got %+v; want data %s", tc.args, m, tc.data)
		}
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, parseBus(t, `{"channels": {"A": {"propagatetochannels": "B"}, "B": {}}}`), dir)
	var out, errout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(testCtx(t), []string{"-socketdir", dir, "listen", "B", "log|x", "-n", "3"}, strings.NewReader(""), &out, &errout)
	}()
	waitListening(t, srv, "B", "log|x")

	a := agent(t, dir, "A")
	b := agent(t, dir, "B")
	ctx := testCtx(t)
	// Order holds per sender: wait for each line before the next sender.
	lines := func(n int) func() bool {
		return func() bool { return strings.Count(out.String(), "\n") == n }
	}
	a.Emit(ctx, "log", map[string]any{"n": 1})
	testutil.Eventually(t, "line 1", lines(1))
	b.Emit(ctx, "other", 2) // not listened to
	b.EmitRaw(ctx, "x", []byte("raw\nbytes"))
	testutil.Eventually(t, "line 2", lines(2))
	a.Emit(ctx, "log", []int{3})
	a.Emit(ctx, "log", 4) // after the count
	a.Flush(ctx)
	b.Flush(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		`{"event":"log","channel":"A","data":{"n":1},"agent":"` + a.ID() + `","node":""}`,
		`{"event":"x","channel":"B","data":"raw\nbytes","agent":"` + b.ID() + `","node":"","raw":true}`,
		`{"event":"log","channel":"A","data":[3],"agent":"` + a.ID() + `","node":""}`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n%s\nwant\n%s", i, got[i], want[i])
		}
		if !json.Valid([]byte(got[i])) {
			t.Errorf("line %d is not JSON", i)
		}
	}
	if errout.String() != "" {
		t.Errorf("stderr %q", errout.String())
	}
}

// TestListenUntilCancelled: without -n, listen runs until its context
// ends (SIGINT in ncclient), then exits cleanly.
func TestListenUntilCancelled(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, nil, dir)
	ctx, cancel := context.WithCancel(testCtx(t))
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-socketdir", dir, "listen", "A"}, strings.NewReader(""), &out, &out)
	}()
	waitListening(t, srv, "A", ".*")
	a := agent(t, dir, "A")
	a.Emit(testCtx(t), "one", 1)
	testutil.Eventually(t, "the message printed", func() bool { return strings.Contains(out.String(), `"event":"one"`) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitListening waits until an agent of channel listens to pattern.
func waitListening(t testing.TB, srv *server.Server, channel, pattern string) {
	t.Helper()
	testutil.Eventually(t, "the listener", func() bool {
		ci, _ := srv.Channel(channel)
		for _, a := range ci.Agents {
			for _, p := range a.Patterns {
				if p == pattern {
					return true
				}
			}
		}
		return false
	})
}
