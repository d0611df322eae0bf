package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tailscale/hujson"
)

// Parse reads a configuration from data, a JWCC (HuJSON) document; name,
// usually the file's path, is used in errors and stored in Source.
//
// Parse starts from [New] and sets each key the document gives. The channels
// key, when given, replaces the channel set; the control channel is added,
// with every flag false, if missing. Unknown keys, duplicate keys, values of
// the wrong type and values out of range are errors; see [Error]. A leading
// UTF-8 byte order mark is ignored. Parse does not modify data.
func Parse(data []byte, name string) (*Config, error) {
	if bytes.HasPrefix(data, []byte(utf8BOM)) {
		// Blank it rather than cut it, so offsets still match data.
		data = append([]byte("   "), data[len(utf8BOM):]...)
	}
	d := &decoder{src: data, errorList: errorList{file: name}}
	if off := tooDeep(data); off >= 0 {
		// hujson recurses once per level: refuse before a hostile file
		// exhausts the stack, which would crash the process.
		d.errorf(off, "", "syntax error: nested deeper than %d levels", maxDepth)
		return nil, d.err()
	}
	v, err := hujson.Parse(data)
	if err != nil {
		d.add(syntaxError(name, err))
		return nil, d.err()
	}
	c := New()
	c.Source = name
	present := d.fields(&v, "", "an object", c.settings())
	if present != nil && c.NATS != nil && present["addr"] == nil {
		c.Addr = "" // the backbone alone: no multicast unless addr is given
	}
	for _, pr := range c.problems() {
		loc := pr.loc
		if loc == nil {
			loc = []string{pr.key}
		}
		d.errorAt(findMember(&v, loc).StartOffset, pr.key, pr.err)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	if _, ok := c.Channels[ControlChannel]; !ok {
		c.Channels[ControlChannel] = &Channel{}
	}
	// Decoding checked everything already; this guards the two against
	// drifting apart.
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

const utf8BOM = "\uFEFF"

// syntaxError turns an error from hujson.Parse, which reads
// "hujson: line L, column C: problem", into an *Error.
func syntaxError(file string, err error) *Error {
	var line, col int
	if _, scanErr := fmt.Sscanf(err.Error(), "hujson: line %d, column %d:", &line, &col); scanErr == nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
	} else {
		line, col = 0, 0
	}
	return &Error{File: file, Line: line, Column: col, Err: fmt.Errorf("syntax error: %w", err)}
}

// maxDepth bounds the nesting of objects and arrays. A valid configuration
// needs four levels.
const maxDepth = 32

// tooDeep returns the offset of the first '{' or '[' nested deeper than
// maxDepth, or -1. It skips strings and comments as hujson does; where the
// two disagree, the input is malformed before that point and hujson
// reports it without recursing further.
func tooDeep(b []byte) int {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '/':
			switch {
			case bytes.HasPrefix(b[i:], []byte("//")):
				if n := bytes.IndexByte(b[i:], '\n'); n >= 0 {
					i += n
				} else {
					i = len(b)
				}
			case bytes.HasPrefix(b[i:], []byte("/*")):
				if n := bytes.Index(b[i+2:], []byte("*/")); n >= 0 {
					i += 2 + n + 1
				} else {
					i = len(b)
				}
			}
		case '{', '[':
			if depth++; depth > maxDepth {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// decoder walks a parsed document into a Config, collecting the problems
// with their positions.
type decoder struct {
	src []byte
	errorList
}

// errorAt reports err about the key at path, found at byte offset off.
func (d *decoder) errorAt(off int, path string, err error) {
	line, col := lineColumn(d.src, off)
	d.add(&Error{File: d.file, Line: line, Column: col, Path: path, Err: err})
}

func (d *decoder) errorf(off int, path, format string, args ...any) {
	d.errorAt(off, path, fmt.Errorf(format, args...))
}

// lineColumn returns the 1-based line and byte column of offset off in src.
func lineColumn(src []byte, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// members calls fn for each member of the object v, in order. It reports a
// repeated name and skips that member. It reports and returns false if v is
// not an object; want describes what was expected.
func (d *decoder) members(v *hujson.Value, path, want string, fn func(name string, m *hujson.ObjectMember)) bool {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		d.errorf(v.StartOffset, path, "want %s, got %s", want, describe(v))
		return false
	}
	first := make(map[string]int, len(obj.Members)) // name → offset
	for i := range obj.Members {
		m := &obj.Members[i]
		lit, _ := m.Name.Value.(hujson.Literal) // hujson guarantees a string
		name := lit.String()
		if off, dup := first[name]; dup {
			line, col := lineColumn(d.src, off)
			d.errorf(m.Name.StartOffset, childPath(path, name), "duplicate key (first at %d:%d)", line, col)
			continue
		}
		first[name] = m.Name.StartOffset
		fn(name, m)
	}
	return true
}

// fields decodes the object v with settings, reporting unknown keys. It
// returns the values of the keys present, or nil if v is not an object.
func (d *decoder) fields(v *hujson.Value, path, want string, settings []setting) map[string]*hujson.Value {
	present := make(map[string]*hujson.Value)
	ok := d.members(v, path, want, func(name string, m *hujson.ObjectMember) {
		p := childPath(path, name)
		i := slices.IndexFunc(settings, func(s setting) bool { return s.key == name })
		if i < 0 {
			d.errorf(m.Name.StartOffset, p, "unknown key%s", suggest(name, settings))
			return
		}
		present[name] = &m.Value
		settings[i].val.decode(d, &m.Value, p)
	})
	if !ok {
		return nil
	}
	return present
}

// findMember returns the value at the path of member names loc inside v,
// or the deepest value found on the way.
func findMember(v *hujson.Value, loc []string) *hujson.Value {
	for _, name := range loc {
		obj, ok := v.Value.(*hujson.Object)
		if !ok {
			return v
		}
		i := slices.IndexFunc(obj.Members, func(m hujson.ObjectMember) bool {
			lit, _ := m.Name.Value.(hujson.Literal)
			return lit.String() == name
		})
		if i < 0 {
			return v
		}
		v = &obj.Members[i].Value
	}
	return v
}

// describe shows v in an error message: a literal as written (shortened),
// or the kind of a composite.
func describe(v *hujson.Value) string {
	lit, ok := v.Value.(hujson.Literal)
	if !ok {
		return kindName(v)
	}
	const maxLen = 40
	if len(lit) <= maxLen {
		return string(lit)
	}
	n := maxLen
	for n > 0 && !utf8.RuneStart(lit[n]) {
		n--
	}
	return string(lit[:n]) + "…"
}

// kindName names the kind of v without showing it.
func kindName(v *hujson.Value) string {
	switch v.Value.Kind() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "an unknown value"
}

// suggest returns ` (did you mean "key"?)` for the known key closest to
// name, or "" if none is close.
func suggest(name string, settings []setting) string {
	name = strings.ToLower(name)
	best, bestDist := "", 1+len(name)/6
	for _, s := range settings {
		if d := editDistance(name, s.key); d <= bestDist && (best == "" || d < bestDist) {
			best, bestDist = s.key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours, in bytes.
func editDistance(a, b string) int {
	// prev2, prev and cur are rows i-2, i-1 and i of the usual table.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
