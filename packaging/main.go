// Command packaging builds netcluster's Linux packages, a .deb and an
// .rpm, with nfpm used as a library:
//
//	cd packaging && go run . [-out DIR] [-arch amd64|arm64] [-version V] [-formats deb,rpm]
//
// Each package holds ncserver and ncclient (built here, for linux/ARCH),
// the systemd units of dist/ (ExecStart pointed at /usr/bin), the default
// config as /etc/netcluster/config.json (a conffile, root:netcluster
// 0640, with socketdir /run/netcluster), and scripts that create the
// system user and group netcluster before unpacking and remove them on
// purge. The version defaults to the tag at HEAD (v1.2.3 → 1.2.3), else
// 0.0.0~git<commit time>.<commit>.
//
// This is a module of its own so that nfpm and its dependencies are not
// dependencies of netcluster.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	out := fs.String("out", "build", "output `directory`")
	root := fs.String("root", "..", "the netcluster repository")
	arch := fs.String("arch", "amd64", "target architecture: amd64 or arm64")
	ver := fs.String("version", "", "package version (default: from git)")
	formats := fs.String("formats", "deb,rpm", "comma-separated package formats")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *arch != "amd64" && *arch != "arm64" {
		return fmt.Errorf("-arch %q: want amd64 or arm64", *arch)
	}
	if *ver == "" {
		v, err := gitVersion(*root)
		if err != nil {
			return fmt.Errorf("no -version given and none from git: %w", err)
		}
		*ver = v
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp("", "netcluster-pkg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := stageFiles(*root, stage, *arch); err != nil {
		return err
	}
	var errs []error
	for _, f := range strings.Split(*formats, ",") {
		path, err := pack(f, stage, *out, *arch, *ver)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		fmt.Println(path)
	}
	return errors.Join(errs...)
}
