package backbone

import (
	"encoding/base64"
	"regexp/syntax"
	"strings"
)

// Subjects. Every message of channel C with event E is published on
//
//	PREFIX.CLUSTER.token(C).tokens(E)
//
// token(s) is s itself when s is non-empty and made only of ASCII letters,
// digits, '_' and '-'; otherwise "~" followed by s in unpadded base64url
// (so "" is "~", and no encoded token can be mistaken for a plain one:
// '~' is never part of a plain token). tokens(E) splits E at each '.' and
// encodes every part with token, so that hierarchical event names such as
// "orders.created" become subject tokens a wildcard can select. When
// tokens(E) would be longer than maxEventSubject bytes, it is cut after as
// many whole parts as fit in maxEventSubject-3 bytes and "~~" is appended
// (the truncation mark, never produced by token); receivers read the event
// from the message itself, never from the subject.

// maxEventSubject bounds the event part of a subject, in bytes.
const maxEventSubject = 200

// truncMark ends a subject whose event part was cut.
const truncMark = "~~"

// plainToken reports whether s can be a subject token as it is.
func plainToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// appendToken appends token(s).
func appendToken(dst []byte, s string) []byte {
	if plainToken(s) {
		return append(dst, s...)
	}
	dst = append(dst, '~')
	return base64.RawURLEncoding.AppendEncode(dst, []byte(s))
}

// eventTokens returns the encoded parts of event.
func eventTokens(event string) []string {
	parts := strings.Split(event, ".")
	toks := make([]string, len(parts))
	for i, p := range parts {
		toks[i] = string(appendToken(nil, p))
	}
	return toks
}

// joinFitting joins toks with '.' if the result fits in maxEventSubject
// bytes; otherwise it joins the longest leading run that fits in
// maxEventSubject-3 bytes and appends truncMark.
func joinFitting(toks []string) string {
	total := len(toks) - 1
	for _, t := range toks {
		total += len(t)
	}
	if total <= maxEventSubject {
		return strings.Join(toks, ".")
	}
	n, size := 0, 0
	for n < len(toks) {
		add := len(toks[n])
		if n > 0 {
			add++
		}
		if size+add > maxEventSubject-len(truncMark)-1 {
			break
		}
		size += add
		n++
	}
	if n == 0 {
		return truncMark
	}
	return strings.Join(toks[:n], ".") + "." + truncMark
}

// subjects builds the subjects of one prefix and cluster.
type subjects struct {
	base string // "PREFIX.CLUSTER."
}

func newSubjects(prefix, cluster string) subjects {
	return subjects{base: prefix + "." + cluster + "."}
}

// channel returns "PREFIX.CLUSTER.token(C)".
func (s subjects) channel(ch string) string {
	return string(appendToken([]byte(s.base), ch))
}

// wildcard returns the subject that matches every event of channel ch.
func (s subjects) wildcard(ch string) string {
	return s.channel(ch) + ".>"
}

// event returns the subject of event on channel ch.
func (s subjects) event(ch, event string) string {
	return s.channel(ch) + "." + joinFitting(eventTokens(event))
}

// interest returns the subject to subscribe to for a listener pattern on
// channel ch, following the rules in docs/PROTOCOL.md: a literal pattern
// maps to its event's exact subject; a pattern whose literal prefix
// contains a '.' to a wildcard below the parts before the last '.'; any
// other (or one that does not compile) to the channel's wildcard. Every
// event the pattern matches is published on a subject the returned one
// matches.
func (s subjects) interest(ch, pattern string) string {
	prefix, complete := literalPrefix(pattern)
	if complete {
		return s.event(ch, prefix)
	}
	cut := strings.LastIndexByte(prefix, '.')
	if cut < 0 {
		return s.wildcard(ch)
	}
	// Every matching event has the parts of prefix[:cut] and at least one
	// more. If those parts fit in what a cut subject keeps, every such
	// event's subject, cut or not, starts with them and has another token;
	// otherwise fall back to the channel's wildcard.
	toks := strings.Join(eventTokens(prefix[:cut]), ".")
	if len(toks) > maxEventSubject-len(truncMark)-1 {
		return s.wildcard(ch)
	}
	return s.channel(ch) + "." + toks + ".>"
}

// literalPrefix returns the literal text every match of pattern (anchored
// at both ends, as listeners are) starts with, and whether the pattern
// matches that text only. A pattern that does not parse has none.
func literalPrefix(pattern string) (string, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	var b strings.Builder
	complete := walkLiteral(re, &b)
	return b.String(), complete
}

// walkLiteral appends the literal prefix of re to b and reports whether re
// is entirely that literal.
func walkLiteral(re *syntax.Regexp, b *strings.Builder) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		b.WriteString(string(re.Rune))
		return true
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Zero-width: a prefix of every match stays one, and a pattern
		// they constrain matches at most the literal.
		return true
	case syntax.OpCapture:
		return walkLiteral(re.Sub[0], b)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !walkLiteral(sub, b) {
				return false
			}
		}
		return true
	}
	return false
}
