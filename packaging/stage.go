package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// gitVersion is the package version of root's HEAD: its tag without the
// "v", else 0.0.0~git<commit time>.<commit> (which sorts before 0.0.0).
func gitVersion(root string) (string, error) {
	if tag, err := git(root, "describe", "--tags", "--exact-match", "HEAD"); err == nil {
		return strings.TrimPrefix(tag, "v"), nil
	}
	when, err := git(root, "log", "-1", "--format=%ct")
	if err != nil {
		return "", err
	}
	hash, err := git(root, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "", err
	}
	var sec int64
	if _, err := fmt.Sscan(when, &sec); err != nil {
		return "", fmt.Errorf("commit time %q: %w", when, err)
	}
	return "0.0.0~git" + time.Unix(sec, 0).UTC().Format("20060102150405") + "." + hash, nil
}

func git(root string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// stageFiles writes into stage what the packages hold, under the names
// pack expects: the two binaries, the units with ExecStart in /usr/bin,
// and the default config with socketdir /run/netcluster.
func stageFiles(root, stage, arch string) error {
	for _, cmd := range []string{"ncserver", "ncclient"} {
		b := exec.Command("go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w",
			"-o", filepath.Join(stage, cmd), "./cmd/"+cmd)
		b.Dir = root
		b.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := b.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/%s: %w\n%s", cmd, err, out)
		}
	}
	for _, unit := range []string{"ncserver.service", "ncserver.socket", "ncserver-control.socket"} {
		edit := func(s string) (string, error) { return s, nil }
		if unit == "ncserver.service" {
			edit = replaceOnce("ExecStart=/usr/local/bin/ncserver ", "ExecStart=/usr/bin/ncserver ")
		}
		if err := copyEdited(filepath.Join(root, "dist", unit), filepath.Join(stage, unit), edit); err != nil {
			return err
		}
	}
	return copyEdited(filepath.Join(root, "config", "default.jsonc"), filepath.Join(stage, "config.json"),
		replaceOnce(`  "socketdir": "",`, `  "socketdir": "/run/netcluster", // where ncserver.service and its socket units put them`))
}

// replaceOnce returns an edit that replaces old, which must occur exactly
// once, by new.
func replaceOnce(old, new string) func(string) (string, error) {
	return func(s string) (string, error) {
		if n := strings.Count(s, old); n != 1 {
			return "", fmt.Errorf("%q occurs %d times, want once", old, n)
		}
		return strings.Replace(s, old, new, 1), nil
	}
}

func copyEdited(src, dst string, edit func(string) (string, error)) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	s, err := edit(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return os.WriteFile(dst, []byte(s), 0o644)
}
