package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/netcluster/netcluster/internal/testutil"
)

// bench: publishers send -n messages in all, every subscriber gets each,
// and it reports rates and latency percentiles; on a terminal, a progress
// bar on stderr.
func TestBench(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)

	out, _, err := ncclient(t, "", "-socketdir", dir, "-json", "bench", "A", "-pub", "2", "-sub", "2", "-size", "64", "-n", "3001")
	if err != nil {
		t.Fatal(err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Count != 3001 || r.Received != 6002 || r.Publishers != 2 || r.Subscribers != 2 || r.Size != 64 {
		t.Errorf("result %+v", r)
	}
	if r.PubRate <= 0 || r.SubRate <= 0 || r.PubMB <= 0 || len(r.Latency) != 5 || r.Latency[4].Percentile != 100 {
		t.Errorf("rates or latency missing: %+v", r)
	}
	for i := 1; i < len(r.Latency); i++ {
		if r.Latency[i].Value < r.Latency[i-1].Value || r.Latency[0].Value <= 0 {
			t.Errorf("percentiles not ordered: %+v", r.Latency)
		}
	}

	// For people: the summary on stdout, the bar on the terminal.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, ptmx); close(copied) }()
	var stdout syncBuffer
	err = run(testCtx(t), []string{"-socketdir", dir, "bench", "B", "-n", "2000"}, strings.NewReader(""), &stdout, tty)
	tty.Close()
	<-copied
	ptmx.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bench on channel B: 1 publishers, 1 subscribers, 2000 messages of 128 bytes", "msgs/s", "MB/s", "latency: p50 "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(screen.String(), "[##############################] 100% sent 2000/2000, received 2000/2000") {
		t.Errorf("no complete progress bar on the terminal: %q", screen.String())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "A", "-size", "4"}, `flag -size: "4" is not a number from 8 to 1048576`},
		{[]string{"bench", "A", "-pub", "0"}, `flag -pub: "0" is not a number from 1 to 256`},
		{[]string{"stats", "-sub", "2"}, "-pub, -sub and -size apply only to bench"},
		{[]string{"bench"}, "bench: missing argument CHANNEL"},
	} {
		_, _, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%q: %v, want usage error %q", tc.args, err, tc.want)
		}
	}
}
