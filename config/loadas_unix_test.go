//go:build unix

package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/config"
)

// secretFile is a config with an unknown key and a key's secret, so that
// an error that quoted the file would show them.
const secretFile = `{"TOPSECRETWORD": 1, "keys": [{"id": 1, "secret": "not base64 SECRETVALUE"}]}`

// openDir returns a fresh directory anyone may search: t.TempDir's parent
// is private.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ncload")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// LoadAs refuses, without quoting it, a file its requester could not
// read, and reads for them what they could.
func TestLoadAs(t *testing.T) {
	t.Parallel()
	other := os.Geteuid() + 12345 // a user who owns nothing here
	if os.Geteuid() == 0 {
		other = 65534 // nobody, whose group nogroup the user database lists
	}
	dir := openDir(t)
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]fs.FileMode{"secret.json": 0o600, "world.json": 0o644, "none.json": 0o000} {
		write(t, filepath.Join(dir, name), secretFile, mode)
	}
	write(t, filepath.Join(private, "world.json"), secretFile, 0o644)
	if err := os.Symlink(filepath.Join(private, "world.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}

	denied := []struct{ name, path, why string }{
		{"owner only", filepath.Join(dir, "secret.json"), "no read permission on the file"},
		{"no one", filepath.Join(dir, "none.json"), "no read permission on the file"},
		{"in a private directory", filepath.Join(private, "world.json"), "no search permission on " + private},
		{"a link into a private directory", filepath.Join(dir, "link.json"), "no search permission on " + private},
		{"the shadow file", "/etc/shadow", "no read permission on the file"},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := os.Stat(tt.path); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			_, err := config.LoadAs(tt.path, other)
			if !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("LoadAs(%s, %d) = %v, want fs.ErrPermission", tt.path, other, err)
			}
			for _, secret := range []string{"TOPSECRETWORD", "SECRETVALUE", "root:"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes the file: %v", err)
				}
			}
			if want := tt.path + ": uid "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error = %v, want it to name the path, the uid and %q", err, tt.why)
			}
		})
	}

	// What the requester may read, it reads, with the usual errors.
	allowed := []struct {
		name, path string
		uid        int
	}{
		{"world readable", filepath.Join(dir, "world.json"), other},
		{"the server's own user", filepath.Join(dir, "secret.json"), os.Geteuid()},
		{"root", filepath.Join(private, "world.json"), 0},
	}
	if os.Geteuid() == 0 {
		group := filepath.Join(dir, "group.json")
		write(t, group, secretFile, 0o640)
		if err := os.Chown(group, 0, 65534); err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, struct {
			name, path string
			uid        int
		}{"by group", group, other})
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.LoadAs(tt.path, tt.uid)
			if err == nil || errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "TOPSECRETWORD: unknown key") {
				t.Errorf("LoadAs(%s, %d) = %v, want the file read (its unknown key reported)", tt.path, tt.uid, err)
			}
		})
	}
}
