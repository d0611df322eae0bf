package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// parseLine splits a REPL line into a command name and its arguments. It
// accepts the original REPL's function syntax, showclient("A", "id"),
// whose arguments are JSON values (strings, and the data of emit), and
// plain words, showclient A id, with "double" or 'single' quotes for words
// with spaces. A trailing semicolon is ignored. In plain words, the JSON
// argument of emit is the rest of the line, spaces and all. An empty line
// gives an empty name.
func parseLine(line string) (name string, args []string, err error) {
	line = strings.TrimSpace(line)
	line = strings.TrimSpace(strings.TrimSuffix(line, ";"))
	if line == "" {
		return "", nil, nil
	}
	end := strings.IndexFunc(line, func(r rune) bool {
		return !(r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r))
	})
	if end < 0 {
		end = len(line)
	}
	name, rest := line[:end], strings.TrimSpace(line[end:])
	if name == "" {
		return "", nil, fmt.Errorf("%q is not a command; type help", line)
	}
	if strings.HasPrefix(rest, "(") {
		close := matchingParen(rest)
		switch {
		case close < 0:
			return "", nil, fmt.Errorf("%s: missing )", name)
		case close != len(rest)-1:
			return "", nil, fmt.Errorf("%s: unexpected %q after )", name, rest[close+1:])
		}
		jsonAt := -1
		if cmd := lookup(name); cmd != nil {
			for i, a := range cmd.args {
				if a.kind == kindJSON {
					jsonAt = i
				}
			}
		}
		args, err = callArgs(rest[1:close], jsonAt)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %v", name, err)
		}
		return name, args, nil
	}
	toks, err := words(rest)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %v", name, err)
	}
	if cmd := lookup(name); cmd != nil {
		// An argument of JSON takes the rest of the line.
		for i, a := range cmd.args {
			if a.kind == kindJSON && len(toks) > i {
				toks = append(toks[:i], word{val: strings.TrimSpace(rest[toks[i].start:])})
				break
			}
		}
	}
	for _, t := range toks {
		args = append(args, t.val)
	}
	return name, args, nil
}

// matchingParen returns the index of the ')' that closes the '(' at the
// start of s, skipping quoted text, or -1.
func matchingParen(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// callArgs reads the arguments between the parentheses of function
// syntax: a list of JSON values, string values unquoted except at index
// jsonAt (the data of emit, kept as JSON); failing that, comma-separated
// words as for plain words ('single quotes', bare words).
func callArgs(s string, jsonAt int) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var vals []json.RawMessage
	if err := json.Unmarshal([]byte("["+s+"]"), &vals); err == nil {
		args := make([]string, len(vals))
		for i, v := range vals {
			var str string
			if i != jsonAt && json.Unmarshal(v, &str) == nil {
				args[i] = str
				continue
			}
			var buf bytes.Buffer
			json.Compact(&buf, v)
			args[i] = buf.String()
		}
		return args, nil
	}
	var args []string
	for _, part := range splitOutsideQuotes(s, ',') {
		toks, err := words(part)
		if err != nil {
			return nil, err
		}
		if len(toks) != 1 {
			return nil, fmt.Errorf("cannot read argument %q; quote it: \"...\"", strings.TrimSpace(part))
		}
		args = append(args, toks[0].val)
	}
	return args, nil
}

// word is one word of a line and the offset where it starts.
type word struct {
	val   string
	start int
}

// words splits s at spaces outside quotes. Inside "double" or 'single'
// quotes a backslash escapes the next character.
func words(s string) ([]word, error) {
	var (
		out   []word
		cur   strings.Builder
		in    bool // inside a word
		quote rune
		start int
		esc   bool
	)
	for i, r := range s {
		switch {
		case esc:
			cur.WriteRune(unescape(r))
			esc = false
		case quote != 0 && r == '\\':
			esc = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			if !in {
				in, start = true, i
			}
			quote = r
		case unicode.IsSpace(r):
			if in {
				out = append(out, word{cur.String(), start})
				cur.Reset()
				in = false
			}
		default:
			if !in {
				in, start = true, i
			}
			cur.WriteRune(r)
		}
	}
	if quote != 0 || esc {
		return nil, errors.New("unterminated quote")
	}
	if in {
		out = append(out, word{cur.String(), start})
	}
	return out, nil
}

func unescape(r rune) rune {
	switch r {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	}
	return r
}

// splitOutsideQuotes splits s at each sep that is not inside quotes.
func splitOutsideQuotes(s string, sep rune) []string {
	var (
		parts []string
		quote rune
		esc   bool
		last  int
	)
	for i, r := range s {
		switch {
		case esc:
			esc = false
		case quote != 0 && r == '\\':
			esc = true
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == sep:
			parts = append(parts, s[last:i])
			last = i + 1
		}
	}
	return append(parts, s[last:])
}
