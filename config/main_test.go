package config

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestResolveSocketDir(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	tests := []struct {
		name   string
		dir    string
		getenv func(string) string
		euid   int
		want   string
	}{
		{"config wins", "/srv/nc", env(map[string]string{EnvSocketDir: "/env", "XDG_RUNTIME_DIR": "/xdg"}), 0, "/srv/nc"},
		{"env before root", "", env(map[string]string{EnvSocketDir: "/env", "XDG_RUNTIME_DIR": "/xdg"}), 0, "/env"},
		{"root", "", env(map[string]string{"XDG_RUNTIME_DIR": "/xdg"}), 0, "/var/run"},
		{"user xdg", "", env(map[string]string{"XDG_RUNTIME_DIR": "/xdg"}), 1000, "/xdg"},
		{"user tmp", "", env(nil), 1000, os.TempDir()},
		{"windows", "", env(nil), -1, os.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resolveSocketDir(tt.dir, tt.getenv, tt.euid); got != tt.want {
				t.Errorf("resolveSocketDir = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestResolveSocketDirEnv checks that the environment is read at call time.
// It cannot run in parallel because it sets the environment.
func TestResolveSocketDirEnv(t *testing.T) {
	c := New()
	t.Setenv(EnvSocketDir, "/first")
	if got := c.ResolveSocketDir(); got != "/first" {
		t.Errorf("ResolveSocketDir = %q, want /first", got)
	}
	t.Setenv(EnvSocketDir, "/second")
	if got := c.ResolveSocketDir(); got != "/second" {
		t.Errorf("ResolveSocketDir = %q, want /second", got)
	}
	c.SocketDir = "/mine"
	if got := c.ResolveSocketDir(); got != "/mine" {
		t.Errorf("ResolveSocketDir = %q, want /mine", got)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"port", "port", 0},
		{"prot", "port", 1},
		{"propagatetochanels", "propagatetochannels", 1},
		{"tll", "ttl", 1},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			t.Parallel()
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
