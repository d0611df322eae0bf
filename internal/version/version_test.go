package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"go install @version", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/netcluster/netcluster", Version: "v1.2.3"},
			Settings:  []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}},
		}, "v1.2.3 go1.26.8 linux/arm64"},
		{"go build in a modified clone", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/netcluster/netcluster", Version: "v0.0.0-20261201200000-3f2a9c0d1e2b+dirty"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "3f2a9c0d1e2b4f50aaaabbbbccccddddeeeeffff"},
				{Key: "vcs.time", Value: "2026-12-01T20:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
				{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
			},
		}, "v0.0.0-20261201200000-3f2a9c0d1e2b+dirty (commit 3f2a9c0d1e2b, 2026-12-01T20:00:00Z, modified) go1.26.8 linux/amd64"},
		{"no build info", nil, "(unknown version) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromBuildInfo(tc.bi).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A test binary has build info: at least the Go version that built it.
func TestGet(t *testing.T) {
	in := Get()
	if in.GoVersion != runtime.Version() || !strings.Contains(in.String(), runtime.Version()) {
		t.Errorf("Get() = %+v, want Go version %s", in, runtime.Version())
	}
	attrs := in.LogAttrs()
	if len(attrs)%2 != 0 || attrs[0] != "version" || attrs[len(attrs)-2] != "go" {
		t.Errorf("LogAttrs() = %v", attrs)
	}
}
