package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Propagation chooses the channels a channel's messages are copied to: none,
// all, or those whose whole name matches a regular expression. It is the
// value of the key "propagatetochannels": false, true or a string.
//
// The zero Propagation propagates to no channel. A Propagation is immutable
// and safe for concurrent use. Matches does not exclude the sending channel:
// PropagateAll and ".*" match it too.
type Propagation struct {
	all bool
	src string         // the pattern as written; "" unless re != nil
	re  *regexp.Regexp // src anchored at both ends
}

// PropagateNone returns the Propagation that matches no channel, written
// false in a file. It is the zero value.
func PropagateNone() Propagation { return Propagation{} }

// PropagateAll returns the Propagation that matches every channel, written
// true in a file.
func PropagateAll() Propagation { return Propagation{all: true} }

// PropagatePattern returns the Propagation that matches the channels whose
// whole name matches the RE2 regular expression pattern: it is compiled as
// ^(?:pattern)$, so "A" matches "A" but not "AB". The pattern must not be
// empty, "true" or "false" (which a file could not tell from the booleans;
// write "(?:true)" to match a channel named true).
func PropagatePattern(pattern string) (Propagation, error) {
	re, err := compilePattern(pattern)
	if err != nil {
		return Propagation{}, fmt.Errorf("config: propagation pattern %q: %w", pattern, err)
	}
	return Propagation{src: pattern, re: re}, nil
}

func compilePattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty regular expression; use false for no channel")
	}
	if pattern == "true" || pattern == "false" {
		return nil, fmt.Errorf("%q reads as a boolean in a file; write \"(?:%s)\" to match a channel of that name", pattern, pattern)
	}
	// Compile the pattern alone first: a pattern such as "a)|(b" would
	// otherwise escape the anchoring group.
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// Matches reports whether channel receives copies under p.
func (p Propagation) Matches(channel string) bool {
	switch {
	case p.all:
		return true
	case p.re != nil:
		return p.re.MatchString(channel)
	}
	return false
}

// String returns p as written in a file: "false", "true", or the pattern.
func (p Propagation) String() string {
	switch {
	case p.all:
		return "true"
	case p.re != nil:
		return p.src
	}
	return "false"
}

// Equal reports whether p and q are the same choice: both none, both all, or
// the same pattern source.
func (p Propagation) Equal(q Propagation) bool {
	return p.all == q.all && p.src == q.src
}

// MarshalJSON returns p as written in a file: false, true, or the pattern as
// a JSON string.
func (p Propagation) MarshalJSON() ([]byte, error) {
	switch {
	case p.all:
		return []byte("true"), nil
	case p.re != nil:
		return json.Marshal(p.src)
	}
	return []byte("false"), nil
}
