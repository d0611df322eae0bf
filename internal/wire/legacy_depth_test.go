package wire

import (
	"strings"
	"testing"
)

// Over-deep legacy JSON is reported as too deep, not as invalid JSON, and
// invalid JSON keeps its old message.
func TestParseLegacyTooDeep(t *testing.T) {
	t.Parallel()
	deep := `{"event":"e","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`
	tests := []struct{ name, msg, want string }{
		{"too deep", deep, "legacy message: JSON nested too deep (more than 10000 levels)"},
		{"too deep and unterminated", `{"event":"e","data":` + strings.Repeat("[", 20000), "legacy message: JSON nested too deep (more than 10000 levels)"},
		{"invalid", `{"event":"e","data":[}`, "legacy message: not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseLegacy([]byte(tt.msg))
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseLegacy: %v, want %q", err, tt.want)
			}
		})
	}
	// 10000 levels are fine.
	ok := `{"event":"e","data":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`
	if _, err := ParseLegacy([]byte(ok)); err != nil {
		t.Errorf("ParseLegacy of 10000 levels: %v", err)
	}
}
