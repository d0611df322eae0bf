package main

import (
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/testutil"
)

// emit -text sends plain text as bytes, -n and -interval repeat it, "-"
// reads the data from standard input; each says what it sent.
func TestEmitFlags(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	got := listenAll(t, agent(t, dir, "A"), ".*")
	for _, tc := range []struct {
		stdin string
		args  []string
		n     int
		data  string
		json  bool
		out   string
	}{
		{"", []string{"emit", "-text", "A", "ev", "hello world"}, 1, "hello world", false, `emitted "ev" on A (11 bytes): "hello world" (text)`},
		{"", []string{"emit", "A", "ev", "7", "-n", "3", "-interval", "10ms"}, 3, "7", true, `emitted 3 × "ev" on A (1 bytes): 7`},
		{`{"from": "stdin"}` + "\n", []string{"emit", "A", "ev", "-"}, 1, `{"from":"stdin"}`, true, `emitted "ev" on A (18 bytes): {"from":"stdin"}`},
		{"line of text\n", []string{"emit", "-text", "A", "ev", "-"}, 1, "line of text", false, `emitted "ev" on A (12 bytes): "line of text" (text)`},
	} {
		out, errout, err := ncclient(t, tc.stdin, append([]string{"-socketdir", dir}, tc.args...)...)
		if err != nil || strings.TrimSpace(out) != tc.out || errout != "" {
			t.Fatalf("%q: %v, output %q %q; want %q", tc.args, err, out, errout, tc.out)
		}
		for range tc.n {
			m := got.wait(t)
			if m.Event != "ev" || string(m.Data) != tc.data || m.JSON != tc.json {
				t.Errorf("%q: got %q (JSON %v); want %q (JSON %v)", tc.args, m.Data, m.JSON, tc.data, tc.json)
			}
		}
	}
	got.none(t)
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"emit", "A", "ev", "plain words"}, "emit: argument DATA: not valid JSON: invalid character 'p' looking for beginning of value (-text sends plain text)"},
		{"not json", []string{"emit", "A", "ev", "-"}, "emit: argument DATA: not valid JSON"},
		{"", []string{"emit", "-text", "A", "ev"}, "emit: -text needs the DATA argument"},
		{"", []string{"stats", "-text"}, "-text and -interval apply only to emit"},
		{"", []string{"emit", "A", "ev", "-interval", "soon"}, `flag -interval: "soon" is not a duration`},
	} {
		_, _, err := ncclient(t, tc.stdin, append([]string{"-socketdir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%q: %v, want usage error %q", tc.args, err, tc.want)
		}
	}
	got.none(t)
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typed, want string }{
		{"shwoconfig", `did you mean "showconfig"?`},
		{"stat", `did you mean "stats"?`},
		{"emti", `did you mean "emit"?`},
		{"exti", `did you mean "exit"?`},
		{"bogus", ""},
	} {
		if got := didYouMean(tc.typed); !strings.Contains(got, tc.want) || tc.want == "" && got != "" {
			t.Errorf("%q: %q, want %q", tc.typed, got, tc.want)
		}
	}
	_, _, err := ncclient(t, "", "-socketdir", testutil.ShortDir(t), "shwochannel", "A")
	if err == nil || !strings.Contains(err.Error(), `unknown command "shwochannel"; did you mean "showchannel"? run ncclient -h`) {
		t.Errorf("command line: %v", err)
	}
}
