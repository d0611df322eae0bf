package router

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// patternTests drives TestCompile and seeds FuzzCompile.
var patternTests = []struct {
	src     string
	kind    kind
	match   []string
	noMatch []string
}{
	{src: "log", kind: kindLiteral, match: []string{"log"}, noMatch: []string{"logs", "lo", "xlog", "", "LOG"}},
	{src: "news/sport-1", kind: kindLiteral, match: []string{"news/sport-1"}, noMatch: []string{"news/sport-12"}},
	{src: `chat\.room`, kind: kindLiteral, match: []string{"chat.room"}, noMatch: []string{"chatxroom", `chat\.room`}},
	{src: `\Qa.b\E`, kind: kindLiteral, match: []string{"a.b"}, noMatch: []string{"axb"}},
	{src: `\Qa.b`, kind: kindLiteral, match: []string{"a.b"}, noMatch: []string{"axb", "a.b)"}},
	{src: "(a)(?:b)()", kind: kindLiteral, match: []string{"ab"}, noMatch: []string{"a", "(a)(?:b)()"}},
	{src: "a.b", kind: kindTemplate, match: []string{"a.b", "axb", "aéb", "a\xffb"}, noMatch: []string{"ab", "a.bc", "a\nb", "a\xff\xffb"}},
	{src: "chat.room", kind: kindTemplate, match: []string{"chat.room", "chat-room"}, noMatch: []string{"chat.roomx", "chatroom", "chat..room"}},
	{src: "..x...", kind: kindTemplate, match: []string{"abxcde", "ééxééé", "..x..."}, noMatch: []string{"abxcd", "abcdef", "abxcdef"}},
	{src: "é.(é)", kind: kindTemplate, match: []string{"é.é", "éeé"}, noMatch: []string{"e.é", "éé"}},
	{src: ".*", kind: kindAnyLine, match: []string{"", "x", "a.b", "\xff"}, noMatch: []string{"a\nb", "\n"}},
	{src: "(?s).*", kind: kindAny, match: []string{"", "a\nb"}},
	{src: "(?s).", kind: kindRegexp, match: []string{"\n", "a"}, noMatch: []string{"ab"}},
	{src: "a|b", kind: kindRegexp, match: []string{"a", "b"}, noMatch: []string{"ab", "", "a|b"}},
	{src: "chat.*", kind: kindRegexp, match: []string{"chat", "chat.room", "chatter"}, noMatch: []string{"xchat", "cha", "chat\nx"}},
	{src: `user\.[0-9]+`, kind: kindRegexp, match: []string{"user.1", "user.42"}, noMatch: []string{"user.", "userx1", "user.1x"}},
	{src: "^log$", kind: kindRegexp, match: []string{"log"}, noMatch: []string{"logs"}},
	{src: "(?i)hello", kind: kindRegexp, match: []string{"hello", "HeLLo"}, noMatch: []string{"hello!"}},
	{src: `\Qa|b\E|c`, kind: kindRegexp, match: []string{"a|b", "c"}, noMatch: []string{"a", "b"}},
	{src: `\Qa|b`, kind: kindLiteral, match: []string{"a|b"}, noMatch: []string{"a"}},
	{src: `x|\Qa|b`, kind: kindRegexp, match: []string{"x", "a|b"}, noMatch: []string{"a", "x|a|b"}},
	{src: "é+", kind: kindRegexp, match: []string{"é", "éé"}, noMatch: []string{"e", ""}},
}

func TestCompile(t *testing.T) {
	t.Parallel()
	for _, tt := range patternTests {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.src, err)
			}
			if got := p.String(); got != tt.src {
				t.Errorf("String() = %q, want %q", got, tt.src)
			}
			if p.kind != tt.kind {
				t.Errorf("kind = %d, want %d", p.kind, tt.kind)
			}
			if got := p.Literal(); got != (tt.kind == kindLiteral) {
				t.Errorf("Literal() = %v", got)
			}
			for _, s := range tt.match {
				if !p.Match(s) || !p.MatchBytes([]byte(s)) {
					t.Errorf("%q does not match %q", tt.src, s)
				}
			}
			for _, s := range tt.noMatch {
				if p.Match(s) || p.MatchBytes([]byte(s)) {
					t.Errorf("%q matches %q", tt.src, s)
				}
			}
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		errText string // the error must contain it
	}{
		{"", `netcluster: invalid listener pattern "": empty pattern`},
		{"a(", "netcluster: invalid listener pattern \"a(\": error parsing regexp: missing closing ): `a(`"},
		{"a)|(b", "unexpected )"},
		{"*", "missing argument to repetition operator"},
		{`\`, "trailing backslash"},
		{`\E`, "invalid escape sequence"},
		{"[z-a]", "invalid character class range"},
		{"x{1001}", "invalid repeat count"},
		{"\xff", `netcluster: invalid listener pattern "\xff": invalid UTF-8`},
		{"a\xffb|c", "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.src)
			if err == nil {
				t.Fatalf("Compile(%q) = %v, want an error", tt.src, p)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("Compile(%q) error %q does not contain %q", tt.src, err, tt.errText)
			}
		})
	}
}

func TestMatchBytesAllocs(t *testing.T) {
	for _, src := range []string{"chat_room", `chat\.room`, "chat.room", ".*", "(?s).*"} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		event := []byte("chat.room")
		p.MatchBytes(event)
		if n := testing.AllocsPerRun(1000, func() { p.MatchBytes(event) }); n != 0 {
			t.Errorf("%q: MatchBytes allocates %v times per call, want 0", src, n)
		}
	}
}

// FuzzCompile checks that Compile never panics, that it accepts exactly the
// non-empty UTF-8 sources the regexp package accepts, and that the compiled
// Pattern agrees with the reference ^(?:src)$.
func FuzzCompile(f *testing.F) {
	for _, tt := range patternTests {
		for _, s := range append(tt.match, tt.noMatch...) {
			f.Add(tt.src, s)
		}
	}
	f.Add("a(", "a")
	f.Add(`\Q)|(`, ")|(")
	f.Fuzz(func(t *testing.T, src, s string) {
		p, err := Compile(src)
		_, refErr := regexp.Compile(src)
		wantOK := src != "" && utf8.ValidString(src) && refErr == nil
		if (err == nil) != wantOK {
			t.Fatalf("Compile(%q) error = %v; want success %v (regexp says %v)", src, err, wantOK, refErr)
		}
		if err != nil {
			return
		}
		if p.String() != src {
			t.Errorf("String() = %q, want %q", p.String(), src)
		}
		if regexp.QuoteMeta(src) == src && !p.Literal() {
			t.Errorf("%q: Literal() = false for a source without metacharacters", src)
		}
		ref, err := regexp.Compile(`^(?:` + src + `)$`)
		if err != nil {
			return // an unterminated \Q swallows the anchors; TestCompile covers it
		}
		derived := []string{
			s, src, "", src + "x", "x" + src, src[:len(src)/2], s + "\n" + s,
			strings.ReplaceAll(src, ".", "x"), strings.ReplaceAll(src, ".", "é"),
			strings.ReplaceAll(src, ".", "\n"), strings.ReplaceAll(src, ".", "\xff"),
		}
		for _, ev := range derived {
			want := ref.MatchString(ev)
			if got := p.Match(ev); got != want {
				t.Errorf("Compile(%q).Match(%q) = %v, want %v", src, ev, got, want)
			}
			if got := p.MatchBytes([]byte(ev)); got != want {
				t.Errorf("Compile(%q).MatchBytes(%q) = %v, want %v", src, ev, got, want)
			}
		}
	})
}
