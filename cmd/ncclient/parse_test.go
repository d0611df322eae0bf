package main

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, name string
		args       []string
		err        string
	}{
		{line: "", name: ""},
		{line: "   ;", name: ""},
		{line: "showconfig()", name: "showconfig"},
		{line: "showconfig", name: "showconfig"},
		{line: "showconfig();", name: "showconfig"},
		{line: `showchannel("A")`, name: "showchannel", args: []string{"A"}},
		{line: `showchannel ("A")`, name: "showchannel", args: []string{"A"}},
		{line: `showchannel('A')`, name: "showchannel", args: []string{"A"}},
		{line: `showchannel(A)`, name: "showchannel", args: []string{"A"}},
		{line: `showchannel A`, name: "showchannel", args: []string{"A"}},
		{line: `showclient("A", "id-1")`, name: "showclient", args: []string{"A", "id-1"}},
		{line: `showclient('A', 'id-1')`, name: "showclient", args: []string{"A", "id-1"}},
		{line: `showclient  A   id-1 `, name: "showclient", args: []string{"A", "id-1"}},
		{line: `reloadconfig("C:\\netcluster\\conf.json")`, name: "reloadconfig", args: []string{`C:\netcluster\conf.json`}},
		{line: `reloaconfig("/etc/netcluster.json")`, name: "reloaconfig", args: []string{"/etc/netcluster.json"}},
		{line: `reloadconfig "/my dir/nc.json"`, name: "reloadconfig", args: []string{"/my dir/nc.json"}},
		{line: `reloadconfig '/my dir/nc.json'`, name: "reloadconfig", args: []string{"/my dir/nc.json"}},
		{line: `emit("A", "ev", {"x": [1, 2]})`, name: "emit", args: []string{"A", "ev", `{"x":[1,2]}`}},
		{line: `emit("A", "ev", -5)`, name: "emit", args: []string{"A", "ev", `-5`}},
		// The data of emit stays JSON in function syntax too.
		{line: `emit("A", "ev", "hello")`, name: "emit", args: []string{"A", "ev", `"hello"`}},
		{line: `emit("A", "ev", "123")`, name: "emit", args: []string{"A", "ev", `"123"`}},
		// Text after the closing parenthesis is an error, not part of an argument.
		{line: `reloadconfig("/a")+("b")`, err: `unexpected "+(\"b\")" after )`},
		{line: `showclient("A", "x")garbage)`, err: `unexpected "garbage)" after )`},
		{line: `showchannel("a)b")`, name: "showchannel", args: []string{"a)b"}},
		{line: `emit A ev {"x": [1, 2]}`, name: "emit", args: []string{"A", "ev", `{"x": [1, 2]}`}},
		{line: `emit A ev "a b"`, name: "emit", args: []string{"A", "ev", `"a b"`}},
		{line: `emit A ev`, name: "emit", args: []string{"A", "ev"}},
		{line: `.exit`, name: ".exit"},
		{line: `help()`, name: "help"},
		{line: `showchannel("A"`, err: "showchannel: missing )"},
		{line: `showchannel "A`, err: "showchannel: unterminated quote"},
		{line: `showclient(A B, c)`, err: `showclient: cannot read argument "A B"`},
		{line: `("A")`, err: `"(\"A\")" is not a command`},
	} {
		name, args, err := parseLine(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v; want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || strings.Join(args, "|") != strings.Join(tc.args, "|") || len(args) != len(tc.args) {
			t.Errorf("%q: got %q %q %v; want %q %q", tc.line, name, args, err, tc.name, tc.args)
		}
	}
}

func TestSplitWord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, before, word string }{
		{"", "", ""},
		{"show", "", "show"},
		{"showchannel ", "showchannel ", ""},
		{"showchannel A", "showchannel ", "A"},
		{`showchannel("Al`, `showchannel("`, "Al"},
		{`showclient("A", "wa`, `showclient("A", "`, "wa"},
		{`reloadconfig /etc/ne`, `reloadconfig `, "/etc/ne"},
	} {
		b, w := splitWord(tc.in)
		if b != tc.before || w != tc.word {
			t.Errorf("%q: got %q %q; want %q %q", tc.in, b, w, tc.before, tc.word)
		}
	}
}

func TestCommonPrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"showchannel"}, "showchannel"},
		{[]string{"showchannel", "showclient", "showconfig"}, "showc"},
		{[]string{"/tmp/é1", "/tmp/è2"}, "/tmp/"},
		{[]string{"A", "Alpha"}, "A"},
		{[]string{"x", "y"}, ""},
	} {
		if got := commonPrefix(tc.in); got != tc.want {
			t.Errorf("%q: %q; want %q", tc.in, got, tc.want)
		}
	}
}
