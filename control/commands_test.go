package control

import (
	"slices"
	"strings"
	"testing"
)

func TestRequestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		req  Request
		want string // the command, or the error
	}{
		{Request{Cmd: CmdStats}, "stats"},
		{Request{Cmd: CmdShowChannel, Channel: "A"}, "showchannel"},
		{Request{Cmd: CmdShowClient, Channel: "A", ID: "x"}, "showclient"},
		{Request{Cmd: CmdReloadConfig, Path: "/etc/nc.jsonc"}, "reloadconfig"},
		{Request{}, `missing "cmd"; want one of channels, reloadconfig, showchannel, showclient, showconfig, stats`},
		{Request{Cmd: "frob"}, `unknown command "frob"; want one of channels, reloadconfig, showchannel, showclient, showconfig, stats`},
		{Request{Cmd: CmdShowChannel}, `showchannel: missing "channel"`},
		{Request{Cmd: CmdShowClient, Channel: "A"}, `showclient: missing "id"`},
		{Request{Cmd: CmdStats, Channel: "A"}, `stats: unexpected field "channel"`},
		{Request{Cmd: CmdShowChannel, Channel: "A", Path: "/x"}, `showchannel: unexpected field "path"`},
		{Request{Cmd: CmdReloadConfig, Path: "/x", ID: "i"}, `reloadconfig: unexpected field "id"`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			cmd, err := tc.req.Check()
			got := cmd.Name
			if err != nil {
				got = err.Error()
				if cmd.Name != "" {
					t.Errorf("error with a command %q", cmd.Name)
				}
			}
			if got != tc.want {
				t.Errorf("Check(%+v) = %q; want %q", tc.req, got, tc.want)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, err string }{
		{`{"cmd":"stats"}`, ""},
		{`{"cmd":"stats","bogus":1}`, `bad request: json: unknown field "bogus"`},
		{`{"cmd":"stats"} {}`, "bad request: data after the JSON object"},
		{`{"cmd":`, "bad request: unexpected EOF"},
		{`[1]`, "bad request: json: cannot unmarshal array"},
	} {
		_, err := ParseRequest([]byte(tc.body))
		if (err == nil) != (tc.err == "") || err != nil && !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("ParseRequest(%s) = %v; want %q", tc.body, err, tc.err)
		}
	}
}

func TestCommandsTable(t *testing.T) {
	t.Parallel()
	cmds := Commands()
	names := Names()
	if len(cmds) != len(names) || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v for %d commands", names, len(cmds))
	}
	for _, c := range cmds {
		if c.Help == "" {
			t.Errorf("%s has no help", c.Name)
		}
		if got, ok := Lookup(c.Name); !ok || got.Name != c.Name {
			t.Errorf("Lookup(%q) = %v, %v", c.Name, got, ok)
		}
		for _, f := range c.Fields {
			if !slices.Contains(allFields, f) {
				t.Errorf("%s takes unknown field %q", c.Name, f)
			}
		}
	}
	// The caller's copy is its own.
	cmds[0].Name = "changed"
	if Commands()[0].Name == "changed" {
		t.Error("Commands returned the table itself")
	}
	if _, ok := Lookup("changed"); ok {
		t.Error("Lookup found a changed copy")
	}
}
