package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is one problem with a configuration. [Parse], [Load] and
// [Config.Validate] return a single *Error, or several joined with
// [errors.Join]; [errors.As] finds the first.
//
// Its message reads "config: FILE:LINE:COLUMN: PATH: problem", leaving out
// the parts that are unknown: Validate knows no file or position.
type Error struct {
	File   string // the name given to Parse, or the path given to Load
	Line   int    // 1-based line; 0 if unknown
	Column int    // 1-based column, in bytes; 0 if unknown
	Path   string // the key, e.g. "channels.A.propagatetonet" or "keys[1].id"; "" for the whole file
	Err    error  // the problem
}

// Error returns the message described on [Error].
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Column))
		b.WriteString(":")
	}
	if e.File != "" || e.Line > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// maxErrors is how many problems one call reports.
const maxErrors = 10

// errorList collects the problems of one Parse or Validate.
type errorList struct {
	file string
	errs []error
	full bool
}

func (l *errorList) add(e *Error) {
	switch {
	case l.full:
	case len(l.errs) == maxErrors:
		l.full = true
		l.errs = append(l.errs, &Error{File: l.file, Err: errors.New("too many errors")})
	default:
		l.errs = append(l.errs, e)
	}
}

// err returns nil, the only error, or all of them joined.
func (l *errorList) err() error {
	if len(l.errs) == 1 {
		return l.errs[0]
	}
	return errors.Join(l.errs...)
}

// childPath returns the path of key name inside path. Names that are not
// plain words are quoted: channels["a.b"].
func childPath(path, name string) string {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// indexPath returns the path of element i of the array at path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
