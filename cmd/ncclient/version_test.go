package main

import (
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/version"
)

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"--version"}} {
		out, _, err := ncclient(t, "", args...)
		if err != nil || out != "ncclient "+version.Get().String()+"\n" {
			t.Errorf("%q: %q, %v", args, out, err)
		}
	}
	if out, _, _ := ncclient(t, "", "-h"); !strings.Contains(out, "-version") {
		t.Errorf("-h does not list -version:\n%s", out)
	}
}
