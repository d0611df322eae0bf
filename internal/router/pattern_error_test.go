package router

import (
	"errors"
	"regexp/syntax"
	"strconv"
	"strings"
	"testing"
)

// An invalid pattern of 64 KiB is quoted in part and keeps its reason, so
// the error survives being cut (an error frame, a log line) and still
// says what is wrong.
func TestCompileLongInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, reason string
	}{
		{"unclosed group", "(" + strings.Repeat("a", 64<<10), "missing closing )"},
		{"bad repeat at the end", strings.Repeat("é", 32<<10) + "x{2000}", "invalid repeat count"},
		{"invalid UTF-8", strings.Repeat("a", 64<<10) + "\xff", "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.src)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			msg := err.Error()
			if len(msg) > 300 {
				t.Errorf("error is %d bytes, want at most 300: %.400s", len(msg), msg)
			}
			if !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q lost the reason %q", msg, tt.reason)
			}
			if want := "… (" + strconv.Itoa(len(tt.src)) + " bytes)"; !strings.Contains(msg, want) {
				t.Errorf("error %q does not mark the cut and the size %q", msg, want)
			}
			if !strings.HasPrefix(msg, `netcluster: invalid listener pattern "`) {
				t.Errorf("error %q lost its prefix", msg)
			}
		})
	}
	// The full error stays reachable.
	_, err := Compile("(" + strings.Repeat("a", 1000))
	var se *syntax.Error
	if !errors.As(err, &se) || se.Code != syntax.ErrMissingParen {
		t.Errorf("errors.As(*syntax.Error) = %v, want ErrMissingParen", se)
	}
}
