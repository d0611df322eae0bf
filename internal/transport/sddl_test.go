package transport

import "testing"

func TestPipeSDDL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, owner, group, want string
	}{
		{"defaults only", "", "", "D:P(A;;GA;;;SY)(A;;GA;;;BA)"},
		{"owner", "S-1-5-21-1-2-3-1001", "", "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-21-1-2-3-1001)"},
		{"owner and group", "S-1-5-18", "S-1-5-32-545", "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-18)(A;;GRGW;;;S-1-5-32-545)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := pipeSDDL(tt.owner, tt.group); got != tt.want {
				t.Errorf("pipeSDDL(%q, %q) = %q, want %q", tt.owner, tt.group, got, tt.want)
			}
		})
	}
}
