package server

import (
	"os"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/testutil"
	"github.com/netcluster/netcluster/internal/transport"
)

// reloadconfig from a user who may use the control socket but could not
// read the file is refused without the file's content; the same request
// from root, who could read it, reads it.
func TestReloadConfigReadsOnlyWhatTheRequesterCould(t *testing.T) {
	s, dir := ctlServer(t, `{"controlsocketmode": "0666", "channels": {"A": {}}}`)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := ctlWriteFile(t, dir, "secret.json", `{"TOPSECRETWORD": "SECRETVALUE"}`) // 0600, root's
	path := transport.SocketPath(dir, control.Channel)

	var c *control.Client
	var err error
	testutil.AsUser(t, 65534, func() { c, err = control.Dial(ctlCtx(t), path, &control.Options{Dial: transport.Dial}) })
	if err != nil {
		t.Fatalf("control connection as nobody: %v", err)
	}
	defer c.Close()
	for _, p := range []string{secret, "/etc/shadow"} {
		_, err = c.ReloadConfig(ctlCtx(t), p)
		if err == nil {
			t.Fatalf("reloadconfig %s as nobody succeeded", p)
		}
		for _, leak := range []string{"TOPSECRETWORD", "SECRETVALUE", "root:"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("reloadconfig %s as nobody quotes the file: %v", p, err)
			}
		}
		if want := p + ": uid 65534 may not read it"; !strings.Contains(err.Error(), want) {
			t.Errorf("reloadconfig %s as nobody: %v, want it to say %q", p, err, want)
		}
	}
	if got := s.Bus().ChannelNames(); strings.Join(got, ",") != "A,control" {
		t.Errorf("channels after refused reloads: %v", got)
	}

	// Root could read the file: the server reads it, and says what is wrong.
	_, err = ctlControl(t, dir).ReloadConfig(ctlCtx(t), secret)
	if err == nil || !strings.Contains(err.Error(), "TOPSECRETWORD: unknown key") {
		t.Errorf("reloadconfig as root: %v, want the file's own error", err)
	}
}
