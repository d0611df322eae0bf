package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/server"
)

// startReply runs "ncclient reply" with args until the test ends, and
// waits until the server has its listener or membership.
func startReply(t *testing.T, srv *server.Server, dir string, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	var errout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-socketdir", dir, "reply"}, args...), strings.NewReader(""), &syncBuffer{}, &errout)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reply: %v", err)
		}
	})
	testutil.Eventually(t, "the reply listener", func() bool {
		ci, _ := srv.Channel(args[0])
		for _, a := range ci.Agents {
			if len(a.Patterns) > 0 || len(a.Queues) > 0 {
				return true
			}
		}
		return false
	})
	return &errout
}

func TestRequestReplyCommands(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tr"); err != nil {
		t.Fatal("tr is needed: ", err)
	}
	dir := testutil.ShortDir(t)
	srv := startServer(t, parseBus(t, `{"channels": {"A": {}}}`), dir)
	startReply(t, srv, dir, "A", "upper", "-group", "g", "--", "tr", "a-z", "A-Z")
	startReply(t, srv, dir, "A", "fail", "--", "sh", "-c", "echo broken >&2; exit 3")
	startReply(t, srv, dir, "A", "slow", "-timeout", "100ms", "--", "sleep", "5")
	startReply(t, srv, dir, "A", "text", "--", "echo", "plain words")

	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"request", "A", "upper", `"abc"`}, `"ABC"` + "\n"},
		{[]string{"request", "A", "upper", `{"k":"v"}`}, `{"K":"V"}` + "\n"},
		{[]string{"request", "A", "text"}, `"plain words"` + "\n"},
		{[]string{"request", "A", "fail"}, `{"error":"command sh: exit status 3: broken"}` + "\n"},
		{[]string{"request", "A", "slow"}, `{"error":"command sleep: timed out after 100ms"}` + "\n"},
	} {
		out, errout, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
		if err != nil || out != tc.out || errout != "" {
			t.Errorf("%q: %v, output %q %q; want %q", tc.args, err, out, errout, tc.out)
		}
	}
	// -json shows the origin.
	out, _, err := ncclient(t, "", "-socketdir", dir, "-json", "request", "A", "upper", `"x"`)
	if err != nil || !strings.HasPrefix(out, `{"event":"upper","channel":"A","data":"X","agent":"ncclient-`) {
		t.Errorf("-json: %v, %q", err, out)
	}
	// The reply ran as a member of group g.
	ci, _ := srv.Channel("A")
	if len(ci.Groups) != 1 || ci.Groups[0].Group != "g" || ci.Groups[0].Pattern != "upper" {
		t.Errorf("groups %+v", ci.Groups)
	}
	// showchannel lists the group and its member, and the counters.
	out, _, err = ncclient(t, "", "-socketdir", dir, "showchannel", "A")
	if err != nil || !regexp.MustCompile(`(?m)^GROUP +PATTERN +MEMBERS\ng +upper +ncclient-\S+/1$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^requests 6, no responders 0, replies 6 \(dropped 0\), queue messages 3, redispatched 0, lost 0$`).MatchString(out) {
		t.Errorf("showchannel: %v\n%s", err, out)
	}
	id := ci.Groups[0].Members[0].Agent
	out, _, err = ncclient(t, "", "-socketdir", dir, "showclient", "A", id)
	if err != nil || !regexp.MustCompile(`(?m)^queue group +g, pattern upper \(sid 1\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^protocol +version 4$`).MatchString(out) {
		t.Errorf("showclient: %v\n%s", err, out)
	}
}

func TestRequestFails(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, parseBus(t, `{"channels": {"A": {}}}`), dir)
	silent := agent(t, dir, "A")
	listenAll(t, silent, "silent") // listens, never answers
	for _, tc := range []struct {
		args []string
		err  string
		code int
	}{
		{[]string{"request", "A", "nobody"}, `request "nobody" on channel A: no responders`, 1},
		{[]string{"-timeout", "200ms", "request", "A", "silent"}, `request "silent" on channel A: no reply within 200ms`, 1},
		{[]string{"request", "A", "x", "{bad"}, "request: argument JSON: not valid JSON", 2},
		{[]string{"reply", "A", "x"}, "reply: missing COMMAND after --", 2},
		{[]string{"reply", "A", "x", "-group", "a b", "--", "true"}, `flag -group: "a b": byte ' ' at 1`, 2},
		{[]string{"reply", "A", "x", "-concurrency", "0", "--", "true"}, "flag -concurrency", 2},
		{[]string{"emit", "A", "x", "-group", "g"}, "-group and -concurrency apply only to reply", 2},
	} {
		_, _, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.err) || exitCode(err) != tc.code {
			t.Errorf("%q: %v (exit %d); want %q, exit %d", tc.args, err, exitCode(err), tc.err, tc.code)
		}
	}
}

// TestReplyConcurrency: reply runs several commands at once, at most
// -concurrency, and stops after -n replies.
func TestReplyConcurrency(t *testing.T) {
	t.Parallel()
	dir, running := testutil.ShortDir(t), t.TempDir()
	srv := startServer(t, parseBus(t, `{"channels": {"A": {}}}`), dir)
	done := make(chan error, 1)
	go func() {
		// Each command counts the commands running beside it.
		script := `f=$(mktemp -p "$1"); sleep 0.3; n=$(ls "$1" | wc -l); rm "$f"; echo $n`
		done <- run(testCtx(t), []string{"-socketdir", dir, "reply", "A", "job", "-concurrency", "3", "-n", "6", "--", "sh", "-c", script, "sh", running},
			strings.NewReader(""), &syncBuffer{}, &syncBuffer{})
	}()
	testutil.Eventually(t, "the reply listener", func() bool {
		ci, _ := srv.Channel("A")
		return len(ci.Agents) == 1 && len(ci.Agents[0].Patterns) == 1
	})
	req := agent(t, dir, "A")
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 6)
	for i := range 6 {
		go func() {
			m, err := req.Request(testCtx(t), "job", i)
			var n int
			if err == nil {
				err = m.Decode(&n)
			}
			results <- result{n, err}
		}()
	}
	maxSeen := 0
	for range 6 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		maxSeen = max(maxSeen, r.n)
	}
	if err := <-done; err != nil {
		t.Fatalf("reply -n 6: %v", err)
	}
	if maxSeen < 2 || maxSeen > 3 {
		t.Fatalf("at most %d commands ran at once; want 2 or 3 with -concurrency 3", maxSeen)
	}
}
