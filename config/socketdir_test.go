package config

import (
	"encoding/json"
	"os"
	"testing"
)

// TestSocketDir is the socket-directory rule as a table; other clients
// (the Node.js one) must follow the same rows.
func TestSocketDir(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	both := map[string]string{EnvSocketDir: "/env", "XDG_RUNTIME_DIR": "/xdg"}
	const private = "/tmp/netcluster-1000"
	tests := []struct {
		name       string
		configured string
		env        map[string]string
		euid       int
		want       string
	}{
		{"config wins", "/srv/nc", both, 1000, "/srv/nc"},
		{"config wins for root", "/srv/nc", both, 0, "/srv/nc"},
		{"env before root", "", both, 0, "/env"},
		{"env before xdg", "", both, 1000, "/env"},
		{"root", "", map[string]string{"XDG_RUNTIME_DIR": "/xdg"}, 0, "/var/run"},
		{"root without env", "", nil, 0, "/var/run"},
		{"user xdg", "", map[string]string{"XDG_RUNTIME_DIR": "/xdg"}, 1000, "/xdg"},
		{"user without xdg: private dir, never the bare temp dir", "", nil, 1000, private},
		{"empty values count as unset", "", map[string]string{EnvSocketDir: "", "XDG_RUNTIME_DIR": ""}, 1000, private},
		{"windows (no uid)", "", nil, -1, private},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := socketDir(tt.configured, env(tt.env), tt.euid, private); got != tt.want {
				t.Errorf("socketDir = %q, want %q", got, tt.want)
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

// TestSocketDirSharedCases checks the rule against the cases of
// socketdir.json, the file the Node.js client follows and is tested
// against too (clients/node/test/socketdir.test.js).
func TestSocketDirSharedCases(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("socketdir.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Name    string            `json:"name"`
			Option  string            `json:"option"`
			Env     map[string]string `json:"env"`
			Euid    int               `json:"euid"`
			Private string            `json:"private"`
			Want    string            `json:"want"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("socketdir.json: %v", err)
	}
	if len(f.Cases) < 8 {
		t.Fatalf("socketdir.json has %d cases", len(f.Cases))
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			if got := socketDir(c.Option, func(k string) string { return c.Env[k] }, c.Euid, c.Private); got != c.Want {
				t.Errorf("socketDir = %q, want %q", got, c.Want)
			}
		})
	}
}
