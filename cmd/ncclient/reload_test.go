package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/wire"
)

// TestReload runs reloadconfig through ncclient: add a channel, change
// flags, remove a channel, and try an invalid file; the agents of a
// channel no reload touches stay connected and keep receiving throughout.
func TestReload(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	cfgDir := testutil.ShortDir(t)
	srv := startServer(t, parseBus(t, `{"channels": {"A": {"propagatetochannels": "B"}, "B": {}, "C": {}}}`), dir)

	// C's agents must never see their connection drop.
	var drops atomic.Int32
	steady := netcluster.WithStateHandler(func(s netcluster.State, err error) {
		if s == netcluster.Disconnected {
			drops.Add(1)
		}
	})
	c1 := agent(t, dir, "C", steady)
	c2 := agent(t, dir, "C", steady)
	onC := listenAll(t, c2, ".*")
	checkC := func(step string) {
		t.Helper()
		if err := c1.Emit(testCtx(t), "tick", step); err != nil {
			t.Fatal(err)
		}
		if m := onC.wait(t); m.Event != "tick" || string(m.Data) != `"`+step+`"` {
			t.Fatalf("%s: C got %+v", step, m)
		}
	}
	checkC("start")

	a := agent(t, dir, "A")
	bGone := make(chan error, 1)
	b := agent(t, dir, "B", netcluster.WithoutReconnect(), netcluster.WithStateHandler(func(s netcluster.State, err error) {
		if s == netcluster.Disconnected {
			bGone <- err
		}
	}))
	onB := listenAll(t, b, ".*")
	a.Emit(testCtx(t), "ev", 1)
	onB.wait(t)

	reload := func(name, src string) (string, error) {
		t.Helper()
		path := writeFile(t, cfgDir, name, src)
		out, _, err := ncclient(t, "", "-socketdir", dir, "reloadconfig", path)
		return out, err
	}

	// Add D. The file names no socketdir: the sockets stay in dir.
	out, err := reload("add.jsonc", `{"channels": {"A": {"propagatetochannels": "B"}, "B": {}, "C": {}, "D": {}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "reloaded " + filepath.Join(cfgDir, "add.jsonc") + ": channels A, B, C, D, control\nadded:   D\n"; out != want {
		t.Errorf("output %q; want %q", out, want)
	}
	d := agent(t, dir, "D")
	onD := listenAll(t, d, ".*")
	checkC("after add")

	// Change A's flags: it now propagates to D, not B.
	path := writeFile(t, cfgDir, "flags.jsonc", `{"channels": {"A": {"propagatetochannels": "D"}, "B": {}, "C": {}, "D": {}}}`)
	out, _, err = ncclient(t, "", "-socketdir", dir, "-json", "reloadconfig", path)
	if err != nil {
		t.Fatal(err)
	}
	var res control.ReloadResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Source != path || len(res.Added)+len(res.Removed) != 0 {
		t.Errorf("-json result %q: %+v %v", out, res, err)
	}
	a.Emit(testCtx(t), "ev", 2)
	if m := onD.wait(t); string(m.Data) != "2" {
		t.Errorf("D got %s", m.Data)
	}
	onB.none(t)
	checkC("after flags")

	// Remove B: its agent is told why, and its socket goes.
	out, err = reload("remove.jsonc", `{"channels": {"A": {"propagatetochannels": "D"}, "C": {}, "D": {}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "removed: B (their agents were disconnected)") {
		t.Errorf("output %q", out)
	}
	select {
	case err := <-bGone:
		var se *netcluster.ServerError
		if !errors.As(err, &se) || se.Code != wire.CodeChannelGone || !strings.Contains(se.Text, `channel "B" was removed from the configuration`) {
			t.Errorf("B's agent closed with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B's agent still connected")
	}
	if _, err := os.Stat(filepath.Join(dir, "netcluster-B")); !os.IsNotExist(err) {
		t.Errorf("B's socket: %v", err)
	}
	checkC("after remove")

	// An invalid file changes nothing, and the error names the problem.
	before, _ := json.Marshal(srv.Bus())
	_, err = reload("bad.jsonc", "{\n  \"channels\": {\n    \"A\": {\"propagatetochannels\": \"(\"},\n  },\n}\n")
	if err == nil || !strings.Contains(err.Error(), "bad.jsonc:3:34: channels.A.propagatetochannels: invalid regular expression") {
		t.Errorf("invalid file: %v", err)
	}
	if after, _ := json.Marshal(srv.Bus()); string(after) != string(before) {
		t.Errorf("an invalid file changed the config:\n%s\n%s", before, after)
	}
	a.Emit(testCtx(t), "ev", 3)
	onD.wait(t)
	checkC("after invalid")

	if n := drops.Load(); n != 0 {
		t.Errorf("C's agents lost their connection %d times", n)
	}
}
