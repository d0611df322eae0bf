package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/config"
)

func TestPropagationMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       config.Propagation
		match   []string
		noMatch []string
		str     string
		json    string
	}{
		{"none", config.PropagateNone(), nil, []string{"A", "control", ""}, "false", "false"},
		{"zero", config.Propagation{}, nil, []string{"A"}, "false", "false"},
		{"all", config.PropagateAll(), []string{"A", "AB", "control"}, nil, "true", "true"},
		{"literal is anchored", mustPattern(t, "A"), []string{"A"}, []string{"AB", "BA", "a", ""}, "A", `"A"`},
		{"alternation is anchored", mustPattern(t, "A|B"), []string{"A", "B"}, []string{"AB", "xB", "Ax"}, "A|B", `"A|B"`},
		{"prefix", mustPattern(t, `logs\..*`), []string{"logs.a", "logs."}, []string{"logs", "xlogs.a"}, `logs\..*`, `"logs\\..*"`},
		{"everything", mustPattern(t, ".*"), []string{"A", "control"}, nil, ".*", `".*"`},
		{"flags stay inside", mustPattern(t, "(?i)a"), []string{"a", "A"}, []string{"aa"}, "(?i)a", `"(?i)a"`},
		{"quoted boolean", mustPattern(t, "(?:true)"), []string{"true"}, []string{"false"}, "(?:true)", `"(?:true)"`},
		{"explicit anchors", mustPattern(t, "^A$"), []string{"A"}, []string{"AB"}, "^A$", `"^A$"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, ch := range tt.match {
				if !tt.p.Matches(ch) {
					t.Errorf("%q does not match %q, want match", tt.p, ch)
				}
			}
			for _, ch := range tt.noMatch {
				if tt.p.Matches(ch) {
					t.Errorf("%q matches %q, want no match", tt.p, ch)
				}
			}
			if got := tt.p.String(); got != tt.str {
				t.Errorf("String = %q, want %q", got, tt.str)
			}
			b, err := json.Marshal(tt.p)
			if err != nil || string(b) != tt.json {
				t.Errorf("MarshalJSON = %s, %v; want %s", b, err, tt.json)
			}
		})
	}
}

func TestPropagatePatternErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ pattern, want string }{
		{"", `config: propagation pattern "": empty regular expression`},
		{"(", `config: propagation pattern "(": error parsing regexp: missing closing )`},
		{"a)|(b", "unexpected )"},
		{`\`, "trailing backslash"},
		{"(?P<x", "invalid named capture"},
		{"true", `config: propagation pattern "true": "true" reads as a boolean in a file; write "(?:true)"`},
		{"false", `"false" reads as a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			_, err := config.PropagatePattern(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PropagatePattern(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
			}
		})
	}
}

func TestPropagationEqual(t *testing.T) {
	t.Parallel()
	ps := []config.Propagation{config.PropagateNone(), config.PropagateAll(), mustPattern(t, "A"), mustPattern(t, "B")}
	for i, p := range ps {
		for j, q := range ps {
			if got := p.Equal(q); got != (i == j) {
				t.Errorf("%q.Equal(%q) = %t", p, q, got)
			}
		}
	}
	if !mustPattern(t, "A").Equal(mustPattern(t, "A")) {
		t.Error("two compilations of A differ")
	}
}
