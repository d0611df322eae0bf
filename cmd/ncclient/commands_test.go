package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
)

const secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes

func TestCommands(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, parseBus(t, `{
		"keys": [{"id": 7, "secret": "`+secret+`"}],
		"channels": {"A": {"propagatetochannels": "B"}, "B": {"dumptoconsole": true}},
	}`), dir)
	w := agent(t, dir, "A", netcluster.WithAgentID("watcher"))
	listenAll(t, w, "log|audit")
	pid := strconv.Itoa(os.Getpid())

	for _, tc := range []struct {
		args  []string
		human []string // regular expressions the human output matches
		json  func(t *testing.T, out []byte)
	}{
		{args: []string{"showconfig"},
			human: []string{`(?m)^port +4454$`, `(?m)^socketdir +` + regexp.QuoteMeta(dir) + `$`, `(?m)^keys +\[\{"id":7,"secret":"REDACTED"\}\]$`,
				`(?m)^NAME +PROPAGATETOCHANNELS +PROPAGATETONET +DUMPTOCONSOLE +ACCEPTNET$`,
				`(?m)^A +B +false +false +true$`, `(?m)^B +false +false +true +true$`, `(?m)^control +false +false +false +false$`},
			json: func(t *testing.T, out []byte) {
				var c struct {
					Port int
					Keys []struct {
						ID     int
						Secret string
					}
					Channels map[string]map[string]any
				}
				if err := json.Unmarshal(out, &c); err != nil {
					t.Fatal(err)
				}
				if c.Port != 4454 || len(c.Keys) != 1 || c.Keys[0].Secret != "REDACTED" || c.Channels["A"]["propagatetochannels"] != "B" || len(c.Channels) != 3 {
					t.Errorf("config %+v", c)
				}
			}},
		{args: []string{"channels"},
			human: []string{`^A\nB\ncontrol\n$`},
			json: func(t *testing.T, out []byte) {
				var names []string
				if err := json.Unmarshal(out, &names); err != nil || strings.Join(names, ",") != "A,B,control" {
					t.Errorf("channels %v %v", names, err)
				}
			}},
		{args: []string{"showchannel", "A"},
			human: []string{`^channel A at ` + regexp.QuoteMeta(filepath.Join(dir, "netcluster-A")) + `\n`,
				`(?m)^messages in 0 \(0 bytes\), delivered 0 \(0 bytes\), dropped 0, slow consumers 0$`,
				`(?m)^ID +PID +UID +WIRE +SINCE +IN +OUT +DROPPED +PATTERNS$`,
				`(?m)^watcher +` + pid + ` +\d+ +native +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +0 +0 +0 +log\|audit$`},
			json: func(t *testing.T, out []byte) {
				var ci control.ChannelInfo
				if err := json.Unmarshal(out, &ci); err != nil {
					t.Fatal(err)
				}
				if ci.Name != "A" || len(ci.Agents) != 1 || ci.Agents[0].ID != "watcher" || ci.Agents[0].Patterns[0] != "log|audit" {
					t.Errorf("channel %+v", ci)
				}
			}},
		{args: []string{"showchannel", "B"}, human: []string{`(?m)^no agents$`},
			json: func(t *testing.T, out []byte) {
				if !strings.Contains(string(out), `"agents": []`) {
					t.Errorf("channel B %s", out)
				}
			}},
		{args: []string{"showclient", "A", "watcher"},
			human: []string{`(?m)^agent +watcher$`, `(?m)^channel +A$`, `(?m)^pid +` + pid + `$`, `(?m)^wire +native$`,
				`(?m)^connected +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)$`, `(?m)^patterns +log\|audit$`,
				`(?m)^buffer +0 of 8388608 bytes queued$`},
			json: func(t *testing.T, out []byte) {
				var ai control.AgentInfo
				if err := json.Unmarshal(out, &ai); err != nil {
					t.Fatal(err)
				}
				if ai.ID != "watcher" || ai.Channel != "A" || ai.PID != os.Getpid() || ai.BufferCap != 8<<20 {
					t.Errorf("agent %+v", ai)
				}
			}},
		{args: []string{"stats"},
			// The control agents of earlier commands may not have left
			// yet: the counts of control are at least 1.
			human: []string{`^node ` + srv.NodeID() + `, up \d+s \(since .*\), \d+ agents\n`,
				`(?m)^CHANNEL +AGENTS +MSGS IN +BYTES IN +MSGS OUT +BYTES OUT +DROPPED +SLOW +REQUESTS +NO RESP +REPLIES +REDISPATCHED$`,
				`(?m)^A +1 +0 +0 +0 +0 +0 +0 +0 +0 +0 +0$`, `(?m)^control +[1-9]\d* +`, `(?m)^TOTAL +([2-9]|\d\d+) +`},
			json: func(t *testing.T, out []byte) {
				var st control.Stats
				if err := json.Unmarshal(out, &st); err != nil {
					t.Fatal(err)
				}
				if st.NodeID != srv.NodeID() || len(st.Channels) != 3 || st.Agents < 2 || st.Totals.Name != "*" || st.Started.IsZero() {
					t.Errorf("stats %+v", st)
				}
				if strings.Contains(string(out), "network") {
					t.Errorf("stats of a server without network show network figures: %s", out)
				}
			}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errout, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
			if err != nil || errout != "" {
				t.Fatalf("err %v, stderr %q", err, errout)
			}
			for _, re := range tc.human {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("output does not match %s:\n%s", re, out)
				}
			}
			if strings.Contains(out, secret) {
				t.Error("output shows the secret")
			}
			// -json anywhere on the line.
			out, errout, err = ncclient(t, "", append(append([]string{"-socketdir", dir}, tc.args...), "-json")...)
			if err != nil || errout != "" {
				t.Fatalf("-json: err %v, stderr %q", err, errout)
			}
			if !json.Valid([]byte(out)) {
				t.Fatalf("-json output is not JSON:\n%s", out)
			}
			tc.json(t, []byte(out))
		})
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	empty := testutil.ShortDir(t)
	bad := writeFile(t, testutil.ShortDir(t), "bad.jsonc", "{\n  \"port\": \"4454\",\n  \"channelz\": {},\n}\n")
	for _, tc := range []struct {
		args []string
		code int
		err  string // the one line on stderr, less "ncclient: "
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"; run ncclient -h for the list`},
		{[]string{"showchannel"}, 2, `showchannel: missing argument CHANNEL (usage: showchannel CHANNEL)`},
		{[]string{"showchannel", "no such"}, 2, `showchannel: argument CHANNEL: `},
		{[]string{"showchannel", "Z"}, 1, `showchannel: unknown channel "Z"; the channels are A, B, control`},
		{[]string{"showclient", "A"}, 2, `showclient: missing argument ID (usage: showclient CHANNEL ID)`},
		{[]string{"showclient", "A", "nobody"}, 1, `showclient: no agent "nobody" on channel "A"`},
		{[]string{"showclient", "Z", "x"}, 1, `showclient: unknown channel "Z"`},
		{[]string{"stats", "now"}, 2, `stats: too many arguments: ["now"] (usage: stats)`},
		{[]string{"emit", "A"}, 2, `emit: missing argument EVENT`},
		{[]string{"emit", "A", "ev", "{x"}, 2, `emit: argument DATA: not valid JSON: invalid character 'x'`},
		{[]string{"emit", "A", "ev", "1", "2"}, 2, `emit: too many arguments`},
		{[]string{"emit", "Z", "ev"}, 1, `emit: netcluster: connect to channel "Z" at ` + filepath.Join(dir, "netcluster-Z")},
		{[]string{"listen", "A", "(", "-n", "1"}, 2, `listen: argument PATTERN: not a valid pattern`},
		{[]string{"listen"}, 2, `listen: missing argument CHANNEL`},
		{[]string{"stats", "-n", "2"}, 2, `-n applies only to emit, listen, reply and bench`},
		{[]string{"listen", "A", "-n", "x"}, 2, `flag -n: "x" is not a count`},
		{[]string{"stats", "-timeout", "soon"}, 2, `flag -timeout: "soon" is not a positive duration`},
		{[]string{"stats", "-socketdir"}, 2, `flag -socketdir needs a value`},
		{[]string{"stats", "-verbose"}, 2, `unknown flag -verbose`},
		{[]string{"reloadconfig"}, 2, `reloadconfig: missing argument PATH`},
		{[]string{"reloadconfig", bad}, 1, `reloadconfig: config: ` + bad + `:2:11: port: want an integer from 1 to 65535, got "4454"; config: ` + bad + `:3:3: channelz: unknown key (did you mean "channels"?)`},
		{[]string{"reloadconfig", "nonexistent.json"}, 1, `reloadconfig: config: open ` + filepath.Join(mustGetwd(t), "nonexistent.json") + `: no such file or directory`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, _, err := ncclient(t, "", append([]string{"-socketdir", dir}, tc.args...)...)
			if err == nil {
				t.Fatalf("no error; output %q", out)
			}
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit code %d; want %d (%v)", got, tc.code, err)
			}
			line := oneLine(err)
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, tc.err) {
				t.Errorf("error\n%s\nwant it to start with\n%s", line, tc.err)
			}
		})
	}

	// No server: the error names the socket tried.
	_, _, err := ncclient(t, "", "-socketdir", empty, "stats")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), filepath.Join(empty, "netcluster-control")) {
		t.Errorf("no server: %v", err)
	}
	// And the REPL does not start.
	_, _, err = ncclient(t, "stats\n", "-socketdir", empty)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(empty, "netcluster-control")) {
		t.Errorf("REPL with no server: %v", err)
	}
}

func mustGetwd(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"stats", "-help"}} {
		out, _, err := ncclient(t, "", args...)
		if err != nil || !strings.HasPrefix(out, "usage: ncclient") || !strings.Contains(out, "listen CHANNEL [PATTERN] [-n COUNT]") {
			t.Errorf("%q: %v %q", args, err, out)
		}
	}
}

// TestSocketDirFromEnvironment cannot run in parallel: it sets the
// environment.
func TestSocketDirFromEnvironment(t *testing.T) {
	dir := testutil.ShortDir(t)
	startServer(t, nil, dir)
	t.Setenv(config.EnvSocketDir, dir)
	out, _, err := ncclient(t, "", "channels")
	if err != nil || out != "A\nB\ncontrol\n" {
		t.Errorf("channels with %s set: %v %q", config.EnvSocketDir, err, out)
	}
	// The flag wins over the environment.
	_, _, err = ncclient(t, "", "-socketdir", testutil.ShortDir(t), "channels")
	if err == nil {
		t.Error("-socketdir of an empty directory did not win over the environment")
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // cmd|args|json|count|socketdir|timeout
	}{
		{[]string{"stats"}, "stats|[]|false|0||5s"},
		{[]string{"-json", "--socketdir=/x", "stats"}, "stats|[]|true|0|/x|5s"},
		{[]string{"listen", "A", "-n", "3", "log"}, "listen|[A log]|false|3||5s"},
		{[]string{"listen", "A", "--n=3", "-timeout", "1s"}, "listen|[A]|false|3||1s"},
		{[]string{"emit", "A", "ev", "-5"}, "emit|[A ev -5]|false|0||5s"},
		{[]string{"emit", "A", "--", "-json"}, "emit|[A -json]|false|0||5s"},
		{[]string{"-json=false", "stats"}, "stats|[]|false|0||5s"},
		{nil, "|[]|false|0||5s"},
	} {
		o, err := parseArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if o.args == nil {
			o.args = []string{}
		}
		got := strings.Join([]string{o.cmd, fmtSlice(o.args), strconv.FormatBool(o.json), strconv.Itoa(o.count), o.socketDir, o.timeout.String()}, "|")
		if got != tc.want {
			t.Errorf("%q: got %s; want %s", tc.args, got, tc.want)
		}
	}
}

func fmtSlice(s []string) string { return "[" + strings.Join(s, " ") + "]" }

// TestControlCommandTable: every control command is an ncclient command
// that runs, with one argument per request field.
func TestControlCommandTable(t *testing.T) {
	t.Parallel()
	for _, cc := range control.Commands() {
		cmd := lookup(cc.Name)
		if cmd == nil || cmd.run == nil || !cmd.repl {
			t.Errorf("control command %s: ncclient command %+v; want one that runs in the REPL", cc.Name, cmd)
			continue
		}
		if len(cmd.args) != len(cc.Fields) || cmd.help != cc.Help {
			t.Errorf("%s: args %v, help %q; want one per field of %v and %q", cc.Name, cmd.args, cmd.help, cc.Fields, cc.Help)
		}
	}
	if len(controlRuns) != len(control.Commands()) {
		t.Errorf("%d runs for %d control commands", len(controlRuns), len(control.Commands()))
	}
}
