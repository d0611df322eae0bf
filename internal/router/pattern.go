package router

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errEmptyPattern is wrapped by [Compile] for the empty pattern.
var errEmptyPattern = errors.New("empty pattern")

// errInvalidUTF8 is wrapped by [Compile] for a pattern that is not UTF-8.
var errInvalidUTF8 = errors.New("invalid UTF-8")

// kind says how a Pattern matches.
type kind uint8

const (
	kindLiteral  kind = iota // equality with text
	kindTemplate             // literal segments and single-rune wildcards
	kindAnyLine              // ".*": any name without '\n'
	kindAny                  // "(?s).*": any name
	kindRegexp               // anchored regular expression
)

// Pattern is a compiled listener pattern. A Pattern is immutable and safe for
// concurrent use.
//
// Most listener patterns are names, perhaps with a '.' that RE2 reads as
// "any character", like "chat.room". Such patterns are matched without the
// regexp package: by equality when they hold no wildcard, otherwise as a
// template of literal segments and wildcards.
type Pattern struct {
	src  string
	kind kind
	// text is the name a literal matches, or for a template its segments
	// joined by one '.' per wildcard, which is what template.mask makes
	// of a matching name.
	text string
	tmpl *template      // kindTemplate only
	re   *regexp.Regexp // kindRegexp only; anchored
}

// template is a pattern made of literal segments separated by runs of
// wildcards, each matching one rune other than '\n' (RE2's '.').
type template struct {
	segs []string // len(gaps)+1 literal segments, possibly empty
	gaps []int    // gaps[i] wildcards lie between segs[i] and segs[i+1]
	min  int      // bytes in the shortest name that can match
	max  int      // bytes in the longest one (a rune has at most 4)
	key  string   // the shape: segment lengths and gaps, see shapeKey
}

// Compile parses a listener pattern: RE2 syntax, as in package regexp,
// matched against the whole event name as if it were ^(?:src)$.
//
// The empty pattern is rejected, since it could only match the empty event
// name, which is not a valid event name. Patterns must be UTF-8. The error
// reads `netcluster: invalid listener pattern "a(": <reason>`.
func Compile(src string) (*Pattern, error) {
	if src == "" {
		return nil, newPatternError(src, errEmptyPattern)
	}
	if !utf8.ValidString(src) {
		return nil, newPatternError(src, errInvalidUTF8)
	}
	// The Pattern outlives src, which may be part of a larger buffer.
	src = strings.Clone(src)
	if regexp.QuoteMeta(src) == src { // the common case; skip parsing
		return &Pattern{src: src, kind: kindLiteral, text: src}, nil
	}
	if src == ".*" { // what the server listens to for each connection in its handshake
		return &Pattern{src: src, kind: kindAnyLine}, nil
	}
	tree, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, newPatternError(src, err)
	}
	if p := classify(src, tree); p != nil {
		return p, nil
	}
	// A source that parses alone has balanced parentheses, so wrapping it
	// in a group cannot change its meaning, with one exception: an
	// unterminated \Q quotes to the end of the expression and would
	// swallow the wrapper.
	re, err := regexp.Compile(`^(?:` + src + `)$`)
	if err != nil {
		re, err = regexp.Compile(`^(?:` + src + `\E)$`)
		if err != nil {
			return nil, newPatternError(src, err)
		}
	}
	return &Pattern{src: src, kind: kindRegexp, re: re}, nil
}

// maxQuoted bounds the bytes of a pattern an error quotes, so that the
// reason after it survives any cut of the message (an error frame, a log
// line): a 64 KiB pattern is not repeated in full, twice.
const maxQuoted = 64

// patternError is the error of an invalid pattern: its source cut to
// maxQuoted bytes, then the reason, whose own quote of the expression is
// cut the same way. Unwrap gives the full error.
type patternError struct {
	src string
	err error
}

func (e *patternError) Error() string {
	reason := e.err.Error()
	var se *syntax.Error
	if errors.As(e.err, &se) {
		reason = "error parsing regexp: " + se.Code.String() + ": `" + prefix(se.Expr)
		if len(se.Expr) > maxQuoted {
			reason += "…"
		}
		reason += "`"
	}
	quoted := strconv.Quote(prefix(e.src))
	if len(e.src) > maxQuoted {
		quoted += fmt.Sprintf("… (%d bytes)", len(e.src))
	}
	return "netcluster: invalid listener pattern " + quoted + ": " + reason
}

func (e *patternError) Unwrap() error { return e.err }

// prefix returns s cut to at most maxQuoted bytes, on a rune boundary.
func prefix(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func newPatternError(src string, err error) error {
	return &patternError{src: src, err: err}
}

// classify returns the Pattern for a parsed source that can be matched
// without the regexp package, or nil.
func classify(src string, tree *syntax.Regexp) *Pattern {
	tree = uncapture(tree)
	if tree.Op == syntax.OpStar {
		switch uncapture(tree.Sub[0]).Op {
		case syntax.OpAnyCharNotNL:
			return &Pattern{src: src, kind: kindAnyLine}
		case syntax.OpAnyChar:
			return &Pattern{src: src, kind: kindAny}
		}
		return nil
	}
	t := &template{segs: []string{""}}
	if !t.add(tree) {
		return nil
	}
	if len(t.gaps) == 0 {
		return &Pattern{src: src, kind: kindLiteral, text: t.segs[0]}
	}
	var text strings.Builder
	var key []byte
	for i, seg := range t.segs {
		text.WriteString(seg)
		t.min += len(seg)
		t.max += len(seg)
		key = fmt.Appendf(key, "%d", len(seg))
		if i < len(t.gaps) {
			text.WriteString(strings.Repeat(".", t.gaps[i]))
			t.min += t.gaps[i]
			t.max += utf8.UTFMax * t.gaps[i]
			key = fmt.Appendf(key, "~%d~", t.gaps[i])
		}
	}
	t.key = string(key)
	return &Pattern{src: src, kind: kindTemplate, text: text.String(), tmpl: t}
}

// uncapture strips capturing groups, which do not change what matches.
func uncapture(re *syntax.Regexp) *syntax.Regexp {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return re
}

// add appends re to the template and reports whether re is made only of
// case-sensitive literals and '.' (without the s flag).
func (t *template) add(re *syntax.Regexp) bool {
	re = uncapture(re)
	switch re.Op {
	case syntax.OpEmptyMatch:
		return true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		t.segs[len(t.segs)-1] += string(re.Rune)
		return true
	case syntax.OpAnyCharNotNL:
		if last := len(t.segs) - 1; last > 0 && t.segs[last] == "" {
			t.gaps[len(t.gaps)-1]++
		} else {
			t.gaps = append(t.gaps, 1)
			t.segs = append(t.segs, "")
		}
		return true
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !t.add(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// String returns the source the pattern was compiled from.
func (p *Pattern) String() string { return p.src }

// Literal reports whether the pattern matches exactly one event name, so
// matching is string equality. That is the case for a pattern without
// regexp metacharacters (regexp.QuoteMeta(src) == src) and for one whose
// metacharacters are all escaped, like `chat\.room`.
func (p *Pattern) Literal() bool { return p.kind == kindLiteral }

// Match reports whether the pattern matches the whole event name.
func (p *Pattern) Match(event string) bool {
	switch p.kind {
	case kindLiteral:
		return event == p.text
	case kindTemplate:
		return matchTemplate(p.tmpl, event, utf8.DecodeRuneInString)
	case kindAnyLine:
		return strings.IndexByte(event, '\n') < 0
	case kindAny:
		return true
	}
	return p.re.MatchString(event)
}

// MatchBytes is like Match for an event name held in a byte slice. It does
// not allocate (package regexp reuses its matching state between calls).
func (p *Pattern) MatchBytes(event []byte) bool {
	switch p.kind {
	case kindLiteral:
		return string(event) == p.text
	case kindTemplate:
		return matchTemplate(p.tmpl, event, utf8.DecodeRune)
	case kindAnyLine:
		return bytes.IndexByte(event, '\n') < 0
	case kindAny:
		return true
	}
	return p.re.Match(event)
}

// matchTemplate reports whether t matches the whole event name. decode is
// utf8.DecodeRune or utf8.DecodeRuneInString; like package regexp, it reads
// each byte of invalid UTF-8 as one rune.
func matchTemplate[T string | []byte](t *template, event T, decode func(T) (rune, int)) bool {
	if len(event) < t.min || len(event) > t.max {
		return false
	}
	for i, seg := range t.segs {
		if len(event) < len(seg) || string(event[:len(seg)]) != seg {
			return false
		}
		event = event[len(seg):]
		if i == len(t.gaps) {
			break
		}
		for range t.gaps[i] {
			if len(event) == 0 {
				return false
			}
			r, n := decode(event)
			if r == '\n' {
				return false
			}
			event = event[n:]
		}
	}
	return len(event) == 0
}

// mask appends to dst what the event name would be if its runes in the
// template's wildcard positions were '.'. For every template t2 with the
// same key (shape), t2 matches event exactly when the mask equals t2's text.
// It reports false if no template of this shape can match event.
func (t *template) mask(dst, event []byte) ([]byte, bool) {
	if len(event) < t.min || len(event) > t.max {
		return dst, false
	}
	for i, seg := range t.segs {
		if len(event) < len(seg) {
			return dst, false
		}
		dst = append(dst, event[:len(seg)]...)
		event = event[len(seg):]
		if i == len(t.gaps) {
			break
		}
		for range t.gaps[i] {
			if len(event) == 0 {
				return dst, false
			}
			r, n := utf8.DecodeRune(event)
			if r == '\n' {
				return dst, false
			}
			dst = append(dst, '.')
			event = event[n:]
		}
	}
	return dst, len(event) == 0
}
