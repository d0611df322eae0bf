// Package version reports what a netcluster binary was built from: the
// module version, the commit and the Go version, as the Go toolchain
// records them in the binary (runtime/debug.ReadBuildInfo).
//
// `go install github.com/netcluster/netcluster/cmd/...@v1.2.3` records the
// module version and no commit; `go build` in a clone records the commit,
// its time and whether the tree had local changes, and a version of the
// form v0.0.0-<time>-<commit> (plus "+dirty").
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary was built from. Empty fields are unknown.
type Info struct {
	Module    string // main module path, e.g. github.com/netcluster/netcluster
	Version   string // module version, e.g. v1.2.3 or (devel)
	Commit    string // VCS revision, full hash
	Time      string // commit time, RFC 3339
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string // toolchain, e.g. go1.26.8
	Platform  string // GOOS/GOARCH
}

// Get returns the running binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(bi)
}

// FromBuildInfo returns the Info in bi; a nil bi (a binary built without
// module support) gives only the Go version and platform.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return in
	}
	in.Module, in.Version = bi.Main.Path, bi.Main.Version
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "GOOS":
			in.Platform = s.Value + in.Platform[strings.Index(in.Platform, "/"):]
		case "GOARCH":
			in.Platform = in.Platform[:strings.Index(in.Platform, "/")+1] + s.Value
		}
	}
	return in
}

// String is the one line `-version` prints after the program's name:
//
//	v1.2.3 (commit 3f2a9c0d1e2b, 2026-12-01T20:00:00Z, modified) go1.26.8 linux/amd64
func (in Info) String() string {
	var b strings.Builder
	v := in.Version
	if v == "" {
		v = "(unknown version)"
	}
	b.WriteString(v)
	var parts []string
	if in.Commit != "" {
		parts = append(parts, "commit "+short(in.Commit))
	}
	if in.Time != "" {
		parts = append(parts, in.Time)
	}
	if in.Modified {
		parts = append(parts, "modified")
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, " %s %s", in.GoVersion, in.Platform)
	return b.String()
}

// LogAttrs returns in as key-value pairs for log/slog: version, commit,
// modified (only when true) and go.
func (in Info) LogAttrs() []any {
	attrs := []any{"version", in.Version}
	if in.Commit != "" {
		attrs = append(attrs, "commit", short(in.Commit))
	}
	if in.Modified {
		attrs = append(attrs, "modified", true)
	}
	return append(attrs, "go", in.GoVersion)
}

// short is the first 12 digits of a commit hash, as git shows it.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
