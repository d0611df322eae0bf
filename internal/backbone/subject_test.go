package backbone

import (
	"regexp"
	"strings"
	"testing"
)

func TestEventSubject(t *testing.T) {
	t.Parallel()
	s := newSubjects("netcluster", "default")
	long := strings.Repeat("a", 150) + "." + strings.Repeat("b", 100)
	tests := []struct{ ch, event, want string }{
		{"A", "log", "netcluster.default.A.log"},
		{"A", "orders.created", "netcluster.default.A.orders.created"},
		{"a.b", "x", "netcluster.default.~YS5i.x"},
		{"A", "hello world", "netcluster.default.A.~aGVsbG8gd29ybGQ"},
		{"A", "a..b", "netcluster.default.A.a.~.b"},
		{"A", "*", "netcluster.default.A.~Kg"},
		{"A", ">", "netcluster.default.A.~Pg"},
		{"A", "~", "netcluster.default.A.~fg"},
		{"A", "é", "netcluster.default.A.~w6k"},
		{"A", long, "netcluster.default.A." + strings.Repeat("a", 150) + ".~~"},
		{"A", strings.Repeat("c", 300), "netcluster.default.A.~~"},
	}
	for _, tt := range tests {
		if got := s.event(tt.ch, tt.event); got != tt.want {
			t.Errorf("event(%q, %q) = %q, want %q", tt.ch, tt.event, got, tt.want)
		}
	}
}

// subjectMatch is NATS's matching of a subject against a subscription.
func subjectMatch(sub, subj string) bool {
	st, tt := strings.Split(sub, "."), strings.Split(subj, ".")
	for i, s := range st {
		if s == ">" {
			return len(tt) > i
		}
		if i >= len(tt) || (s != "*" && s != tt[i]) {
			return false
		}
	}
	return len(st) == len(tt)
}

func TestInterest(t *testing.T) {
	t.Parallel()
	s := newSubjects("nc", "c")
	tests := []struct{ pattern, want string }{
		{"log", "nc.c.A.log"},
		{"orders.created", "nc.c.A.>"}, // an unescaped '.' is any character: no literal
		{`orders\.created`, "nc.c.A.orders.created"},
		{`orders\..*`, "nc.c.A.orders.>"},
		{`orders\.new\.[0-9]+`, "nc.c.A.orders.new.>"},
		{`ord.*`, "nc.c.A.>"},
		{`.*`, "nc.c.A.>"},
		{`a|b`, "nc.c.A.>"},
		{`(?i)log`, "nc.c.A.>"},
		{`^log$`, "nc.c.A.log"},
		{`(log)`, "nc.c.A.log"},
		{`hello world`, "nc.c.A.~aGVsbG8gd29ybGQ"},
		{`(`, "nc.c.A.>"},
	}
	for _, tt := range tests {
		if got := s.interest("A", tt.pattern); got != tt.want {
			t.Errorf("interest(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

// TestInterestCovers checks the one property routing needs: every event a
// pattern matches is published on a subject its interest matches.
func TestInterestCovers(t *testing.T) {
	t.Parallel()
	s := newSubjects("nc", "c")
	long := strings.Repeat("p", 190)
	events := []string{"log", "orders.created", "orders.new.1", "orders.", "orders..x", "a b.c", "x.y.z",
		long + ".q", long + "." + strings.Repeat("q", 30), strings.Repeat("r", 201), "é.é", "*.>", "~~"}
	patterns := []string{`log`, `orders\..*`, `orders\.new\..+`, `.*`, `a b\..*`, `x\.y\.z`, regexp.QuoteMeta(long) + `\..*`,
		`r+`, `é\..*`, `\*\.>`, `~~`, `orders\.\.x`}
	for _, p := range patterns {
		re := regexp.MustCompile(`^(?:` + p + `)$`)
		sub := s.interest("A", p)
		for _, e := range events {
			if re.MatchString(e) && !subjectMatch(sub, s.event("A", e)) {
				t.Errorf("pattern %q matches %q, but its interest %q misses the subject %q", p, e, sub, s.event("A", e))
			}
		}
	}
}

func TestMinimal(t *testing.T) {
	t.Parallel()
	got := minimal(map[string]bool{"a.A.x": true, "a.A.o.>": true, "a.A.o.n.>": true, "a.A.o.y": true, "a.A.p": true})
	want := []string{"a.A.o.>", "a.A.p", "a.A.x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("minimal = %q, want %q", got, want)
	}
	got = minimal(map[string]bool{"a.A.>": true, "a.A.x": true, "a.A.o.>": true, "a.B.x": true})
	if want := []string{"a.A.>", "a.B.x"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("minimal = %q, want %q", got, want)
	}
}

func TestStreamNames(t *testing.T) {
	t.Parallel()
	if got := StreamName("acme.nc", "prod", "a.b"); got != "acme~nc=prod=a~b" {
		t.Errorf("StreamName = %q", got)
	}
	if got := ConsumerName("host-1"); got != "nc-host-1" {
		t.Errorf("ConsumerName = %q", got)
	}
	if got := ConsumerName("h.example.com"); strings.ContainsAny(got, ".*> ") {
		t.Errorf("ConsumerName = %q, not a valid name", got)
	}
}
