package main

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the packagers
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

//go:embed scripts
var scripts embed.FS

// unitDir is where packages put systemd units (merged /usr: Debian 12+,
// Fedora, RHEL).
const unitDir = "/usr/lib/systemd/system/"

// pack writes the package of format (deb or rpm) for the files in stage
// into out and returns its path.
func pack(format, stage, out, arch, version string) (string, error) {
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	scriptDir := filepath.Join(stage, "scripts")
	if err := os.CopyFS(scriptDir, scripts); err != nil && !os.IsExist(err) {
		return "", err
	}
	script := func(name string) string { return filepath.Join(scriptDir, "scripts", name) }
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: filepath.Join(stage, src), Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	conf := file("config.json", "/etc/netcluster/config.json", 0o640)
	conf.Type = files.TypeConfigNoReplace
	conf.FileInfo.Group = "netcluster" // made by preinstall, before unpacking
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "netcluster",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "netcluster maintainers <https://github.com/netcluster/netcluster>",
		Description:   "message bus between processes and hosts: ncserver and ncclient\nncserver owns a Unix socket per channel; agents emit events and listen by\npattern; messages propagate between channels and, optionally, over\nencrypted UDP multicast or unicast to other hosts.",
		Homepage:      "https://github.com/netcluster/netcluster",
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				file("ncserver", "/usr/bin/ncserver", 0o755),
				file("ncclient", "/usr/bin/ncclient", 0o755),
				file("ncserver.service", unitDir+"ncserver.service", 0o644),
				file("ncserver.socket", unitDir+"ncserver.socket", 0o644),
				file("ncserver-control.socket", unitDir+"ncserver-control.socket", 0o644),
				{Destination: "/etc/netcluster", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				conf,
			},
			Scripts: nfpm.Scripts{
				PreInstall:  script("preinstall.sh"),
				PostInstall: script("postinstall.sh"),
				PreRemove:   script("preremove.sh"),
				PostRemove:  script("postremove.sh"),
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	path := filepath.Join(out, p.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return path, f.Close()
}
