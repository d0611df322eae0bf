// Package node runs the Node.js client's test suite from the repository's
// Go test command, and checks the client's listener patterns against RE2.
// Without node and npm the tests skip with a message starting NODE-SKIP;
// NETCLUSTER_REQUIRE_NODE=1 (set by .ci/run) makes that a failure.
package node

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// needNode returns the paths of node and npm, or skips (fails under
// NETCLUSTER_REQUIRE_NODE=1).
func needNode(t *testing.T) (string, string) {
	t.Helper()
	node, err1 := exec.LookPath("node")
	npm, err2 := exec.LookPath("npm")
	if err1 != nil || err2 != nil {
		msg := "NODE-SKIP: node and npm are needed for the Node.js client's tests (apt-get install nodejs npm)"
		if os.Getenv("NETCLUSTER_REQUIRE_NODE") == "1" {
			t.Fatal(msg + "; NETCLUSTER_REQUIRE_NODE=1 requires them")
		}
		t.Skip(msg)
	}
	return node, npm
}

func run(t *testing.T, ctx context.Context, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.Bytes())
	}
	t.Logf("%s %v: %.1fs", filepath.Base(name), args, time.Since(start).Seconds())
}

// built is set once prepare has built the package in this test run.
var built atomic.Bool

// prepare installs the dev dependencies if missing and builds the package,
// once per test run.
func prepare(t *testing.T, ctx context.Context, node, npm string) {
	t.Helper()
	if built.Load() {
		return
	}
	if _, err := os.Stat("node_modules/typescript"); err != nil {
		run(t, ctx, nil, npm, "ci", "--no-audit", "--no-fund")
	}
	run(t, ctx, nil, node, "scripts/build.js")
	built.Store(true)
}

// TestNodeSuite runs test/*.test.js (node:test) against ncserver and
// ncclient built from this repository.
func TestNodeSuite(t *testing.T) {
	node, npm := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prepare(t, ctx, node, npm)
	bin := t.TempDir()
	var env []string
	for name, pkg := range map[string]string{"ncserver": "../../cmd/ncserver", "ncclient": "../../cmd/ncclient", "ncgoagent": "./test/goagent"} {
		run(t, ctx, nil, "go", "build", "-o", filepath.Join(bin, name), pkg)
		env = append(env, strings.ToUpper(name)+"="+filepath.Join(bin, name))
	}
	// The spec reporter lists each test on a line and repeats the failures,
	// with their details, at the end.
	run(t, ctx, append(env, "NC_BUILT=1", "NC_TEST_REPORTER=spec"), node, "scripts/test.js")
}

type patternTable struct {
	Accept []struct {
		Pattern string   `json:"pattern"`
		Match   []string `json:"match"`
		NoMatch []string `json:"nomatch"`
	} `json:"accept"`
}

// TestPatternTableRE2 checks the accepted patterns of the table the Node
// tests use against RE2, as the server compiles them.
func TestPatternTableRE2(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("test/testdata/patterns.json")
	if err != nil {
		t.Fatal(err)
	}
	var tab patternTable
	if err := json.Unmarshal(b, &tab); err != nil {
		t.Fatal(err)
	}
	for _, c := range tab.Accept {
		re, err := regexp.Compile(`^(?:` + c.Pattern + `)$`)
		if err != nil {
			t.Errorf("pattern %q: %v", c.Pattern, err)
			continue
		}
		for _, s := range c.Match {
			if !re.MatchString(s) {
				t.Errorf("pattern %q: RE2 does not match %q", c.Pattern, s)
			}
		}
		for _, s := range c.NoMatch {
			if re.MatchString(s) {
				t.Errorf("pattern %q: RE2 matches %q", c.Pattern, s)
			}
		}
	}
}

// TestRandomPatternsAgree generates random patterns of the subset the
// client accepts, with the client's RegExp answers, and checks RE2 gives
// the same on every subject.
func TestRandomPatternsAgree(t *testing.T) {
	node, npm := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prepare(t, ctx, node, npm)
	for _, seed := range []string{"1", "2", "3"} {
		out, err := exec.CommandContext(ctx, node, "test/gen-patterns.js", "2000", seed).Output()
		if err != nil {
			t.Fatalf("gen-patterns: %v", err)
		}
		var res struct {
			Cases []struct {
				Pattern  string   `json:"pattern"`
				Subjects []string `json:"subjects"`
				Match    []bool   `json:"match"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, c := range res.Cases {
			re, err := regexp.Compile(`^(?:` + c.Pattern + `)$`)
			if err != nil {
				t.Errorf("the client accepts %q, RE2 does not: %v", c.Pattern, err)
				bad++
				continue
			}
			for i, s := range c.Subjects {
				if got := re.MatchString(s); got != c.Match[i] {
					t.Errorf("pattern %q on %q: RE2 %v, JavaScript %v", c.Pattern, s, got, c.Match[i])
					bad++
				}
			}
			if bad > 20 {
				t.Fatal("too many differences")
			}
		}
	}
}
