package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/testutil"
)

// netbusStarts returns the attributes of each "netbus: started" record in
// a JSON log: the sockets as netbus opened them.
func netbusStarts(t *testing.T, log string) []map[string]any {
	t.Helper()
	var starts []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == "netbus: started" {
			starts = append(starts, rec)
		}
	}
	return starts
}

// TestNetLoopbackOffloadKeys: multicastloop and netoffload reach the
// sockets netbus opens (loop-back as the socket reports it, GSO and GRO as
// the transport uses them), and a reload that changes them rebinds.
func TestNetLoopbackOffloadKeys(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	var log testutil.SyncBuffer
	src := `{"multicastloop": false, "netoffload": false, "channels": {"A": {}}}`
	bus := ntConfig(t, group, port, src)
	if bus.MulticastLoop || bus.NetOffload {
		t.Fatalf("parsed multicastloop %v, netoffload %v, want false, false", bus.MulticastLoop, bus.NetOffload)
	}
	dir := testutil.ShortDir(t)
	bus.SocketDir = dir
	srv, err := New(Config{Bus: bus, Console: io.Discard, Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	starts := netbusStarts(t, log.String())
	if len(starts) != 1 {
		t.Fatalf("%d netbus starts logged, want 1:\n%s", len(starts), log.String())
	}
	for _, k := range []string{"loopback", "gso", "gro"} {
		if starts[0][k] != false {
			t.Errorf("with multicastloop and netoffload false, netbus started with %s=%v, want false", k, starts[0][k])
		}
	}

	// A reload changing only these keys rebinds with them on.
	on := ntConfig(t, group, port, `{"channels": {"A": {}}}`)
	on.SocketDir = dir
	if err := srv.Reload(on); err != nil {
		t.Fatal(err)
	}
	starts = netbusStarts(t, log.String())
	if len(starts) != 2 {
		t.Fatalf("%d netbus starts logged after the reload, want 2 (a rebind):\n%s", len(starts), log.String())
	}
	if starts[1]["loopback"] != true {
		t.Errorf("after the reload to the defaults, loopback=%v, want true", starts[1]["loopback"])
	}
	if runtime.GOOS == "linux" && (starts[1]["gso"] != true || starts[1]["gro"] != true) {
		t.Errorf("after the reload to the defaults, gso=%v gro=%v, want true on Linux", starts[1]["gso"], starts[1]["gro"])
	}

	// The same config again: no rebind.
	again := ntConfig(t, group, port, `{"channels": {"A": {}}}`)
	again.SocketDir = dir
	if err := srv.Reload(again); err != nil {
		t.Fatal(err)
	}
	if n := len(netbusStarts(t, log.String())); n != 2 {
		t.Errorf("%d netbus starts after an unchanged reload, want 2", n)
	}
}
