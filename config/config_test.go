package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/config"
)

// equalConfig compares two Configs field by field, Propagations by source.
func equalConfig(a, b *config.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Channels) != len(b.Channels) || (a.Channels == nil) != (b.Channels == nil) {
		return false
	}
	for name, ca := range a.Channels {
		cb, ok := b.Channels[name]
		if !ok || (ca == nil) != (cb == nil) {
			return false
		}
		if ca == nil {
			continue
		}
		if !ca.Propagate.Equal(cb.Propagate) || ca.PropagateToNet != cb.PropagateToNet ||
			ca.DumpToConsole != cb.DumpToConsole || ca.AcceptNet != cb.AcceptNet ||
			!reflect.DeepEqual(ca.Durable, cb.Durable) {
			return false
		}
	}
	a2, b2 := *a, *b
	a2.Channels, b2.Channels = nil, nil
	return reflect.DeepEqual(a2, b2)
}

func TestSeedSample(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "seed-sample.jsonc")
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := config.New()
	want.Source = path
	want.Addr = "224.0.0.0"
	want.Port = 4454
	want.DumpNet = true
	want.ConnectToNet = true
	want.StartControl = true
	all := mustPattern(t, ".*")
	want.Channels = map[string]*config.Channel{
		"control": {}, // acceptnet defaults to false for control
		"A":       {Propagate: all, AcceptNet: true},
		"B":       {Propagate: all, AcceptNet: true},
	}
	if !equalConfig(c, want) {
		t.Errorf("Load(%s) =\n%s\nwant\n%s", path, dump(c), dump(want))
	}
	if !c.Channels["A"].Propagate.Matches("B") || !c.Channels["A"].Propagate.Matches("control") {
		t.Errorf(`"A" propagation %q does not match every channel`, c.Channels["A"].Propagate)
	}
	if c.Channels["control"].Propagate.Matches("A") {
		t.Errorf("control propagates, want not")
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.ChannelNames(), []string{"A", "B", "control"}; !slices.Equal(got, want) {
		t.Errorf("ChannelNames = %q, want %q", got, want)
	}
	if c.Source != "" {
		t.Errorf("Source = %q, want empty", c.Source)
	}
	if c.ConnectToNet {
		t.Error("ConnectToNet is on, want the network off")
	}
	for _, name := range []string{"A", "B"} {
		if p := c.Channels[name].Propagate; p.String() != ".*" {
			t.Errorf("channel %s propagates to %q, want .*", name, p)
		}
	}

	// Apart from the channels, the default file states exactly New's
	// defaults.
	n := config.New()
	c.Channels, n.Channels = nil, nil
	if !equalConfig(c, n) {
		t.Errorf("default.jsonc and New differ:\n%s\n%s", dump(c), dump(n))
	}

	// Each call returns a new Config.
	config.Default().Channels["A"].DumpToConsole = true
	if config.Default().Channels["A"].DumpToConsole {
		t.Error("Default returned a shared Config")
	}

	// DefaultFile is that file, and a copy.
	f := config.DefaultFile()
	if !bytes.Contains(f, []byte("//")) {
		t.Error("DefaultFile has no comments")
	}
	f[0] = 'X'
	if config.DefaultFile()[0] == 'X' {
		t.Error("DefaultFile returned shared bytes")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want func(c *config.Config)
	}{
		{"empty object", `{}`, func(*config.Config) {}},
		{"control added", `{"channels": {"A": {}}}`, func(c *config.Config) {
			c.Channels = map[string]*config.Channel{"control": {}, "A": {AcceptNet: true}}
		}},
		{"control kept", `{"channels": {"control": {"dumptoconsole": true}}}`, func(c *config.Config) {
			c.Channels = map[string]*config.Channel{"control": {DumpToConsole: true}}
		}},
		{"empty channels", `{"channels": {}}`, func(*config.Config) {}},
		{"trailing commas and comments", `/* head */ {
			"port": 5000, // inline
			"peers": ["a:1", "b:2",],
			"channels": {"A": {"propagatetochannels": true,},},
		}`, func(c *config.Config) {
			c.Port = 5000
			c.Peers = []string{"a:1", "b:2"}
			c.Channels["A"] = &config.Channel{Propagate: config.PropagateAll(), AcceptNet: true}
		}},
		{"every key", `{
			"addr": "ff02::1%eth0", "port": 1, "dumpnet": true, "connecttonet": true, "startcontrol": false,
			"socketdir": "/run/nc", "socketmode": "640", "controlsocketmode": "600",
			"maxframe": 1024, "outbuffer": 65536, "slowconsumer": "disconnect",
			"interface": "eth0", "ttl": 0, "peers": ["[::1]:4454", "node2.example:65535"], "nodename": "n1",
			"keys": [{"id": 7, "secret": "` + secret1 + `"}, {"secret": "` + secret2 + `", "id": 0}],
			"netpayload": 65000, "maxnetmessage": 1024, "metrics": ":9090",
			"multicastloop": false, "netoffload": false,
			"channels": {"x.y_z-9": {"propagatetochannels": "A|B", "propagatetonet": true, "dumptoconsole": true, "acceptnet": false}},
		}`, func(c *config.Config) {
			c.Addr, c.Port, c.DumpNet, c.ConnectToNet, c.StartControl = "ff02::1%eth0", 1, true, true, false
			c.SocketDir, c.SocketMode, c.ControlSocketMode = "/run/nc", 0o640, 0o600
			c.MaxFrame, c.OutBuffer, c.SlowConsumer = 1024, 65536, config.SlowConsumerDisconnect
			c.Interface, c.TTL, c.Peers, c.NodeName = "eth0", 0, []string{"[::1]:4454", "node2.example:65535"}, "n1"
			c.Keys = []config.Key{{ID: 7, Secret: seq(1)}, {ID: 0, Secret: seq(0xa0)}}
			c.NetPayload, c.MaxNetMessage, c.Metrics = 65000, 1024, ":9090"
			c.MulticastLoop, c.NetOffload = false, false
			c.Channels["x.y_z-9"] = &config.Channel{Propagate: mustPattern(t, "A|B"), PropagateToNet: true, DumpToConsole: true}
		}},
		{"unicode escapes", `{"nodename": "caf\u00e9", "channels": {"\u0041": {}}}`, func(c *config.Config) {
			c.NodeName = "café"
			c.Channels["A"] = &config.Channel{AcceptNet: true}
		}},
		{"brackets in strings and comments", "{\"nodename\": \"[[[[{{{{\\\"[[\", // [[[[\n /* {{{{ */ \"ttl\": 2 /* ]]]] */}", func(c *config.Config) {
			c.NodeName = `[[[[{{{{"[[`
			c.TTL = 2
		}},
		{"negative zero", `{"ttl": -0}`, func(c *config.Config) { c.TTL = 0 }},
		{"loop and offload on", `{"multicastloop": true, "netoffload": true}`, func(*config.Config) {}},
		{"loop off", `{"multicastloop": false}`, func(c *config.Config) { c.MulticastLoop = false }},
		{"offload off", `{"netoffload": false}`, func(c *config.Config) { c.NetOffload = false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Parse([]byte(tt.in), "t.jsonc")
			if err != nil {
				t.Fatal(err)
			}
			want := config.New()
			want.Source = "t.jsonc"
			tt.want(want)
			if !equalConfig(got, want) {
				t.Errorf("Parse =\n%s\nwant\n%s", dump(got), dump(want))
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "nc.json")
	if err := os.WriteFile(path, []byte("{\n  \"port\": 1,\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != path || c.Port != 1 {
		t.Errorf("Load = Source %q, Port %d; want %q, 1", c.Source, c.Port, path)
	}

	if err := os.WriteFile(path, []byte("{\n  \"port\": -1,\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path)
	if want := "config: " + path + ":2:11: port: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load error = %v, want prefix %q", err, want)
	}

	_, err = config.Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load of a missing file: %v, want a config: error wrapping fs.ErrNotExist", err)
	}
}

func TestNewValid(t *testing.T) {
	t.Parallel()
	c := config.New()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.ChannelNames(); !slices.Equal(got, []string{config.ControlChannel}) {
		t.Errorf("ChannelNames = %q, want [control]", got)
	}
	if *c.Channels[config.ControlChannel] != (config.Channel{}) {
		t.Errorf("control channel = %+v, want every flag false", *c.Channels[config.ControlChannel])
	}
	if ch := config.NewChannel(); !ch.AcceptNet || ch.PropagateToNet || ch.DumpToConsole || ch.Propagate.Matches("A") {
		t.Errorf("NewChannel = %+v, want only AcceptNet", *ch)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   string
	}{
		{"zero config", func(c *config.Config) { *c = config.Config{} }, "config: addr: want an IP address"},
		{"port", func(c *config.Config) { c.Port = 0 }, "config: port: want an integer from 1 to 65535, got 0"},
		{"addr", func(c *config.Config) { c.Addr = "239.1" }, `config: addr: want an IP address such as "239.255.44.54", got "239.1"`},
		{"socketmode", func(c *config.Config) { c.SocketMode = 0o1777 }, "config: socketmode: want permission bits within 0777, got 01777"},
		{"controlsocketmode", func(c *config.Config) { c.ControlSocketMode = os.ModeDir | 0o600 }, "config: controlsocketmode: want permission bits within 0777"},
		{"maxframe", func(c *config.Config) { c.MaxFrame = 1 << 31 }, "config: maxframe: want an integer from 1024 to 1073741824, got 2147483648"},
		{"outbuffer", func(c *config.Config) { c.OutBuffer = 0 }, "config: outbuffer: want an integer from 65536 to 4294967296, got 0"},
		{"slowconsumer", func(c *config.Config) { c.SlowConsumer = "" }, `config: slowconsumer: want "drop" or "disconnect", got ""`},
		{"ttl", func(c *config.Config) { c.TTL = -1 }, "config: ttl: want an integer from 0 to 255, got -1"},
		{"peer", func(c *config.Config) { c.Peers = []string{"a:1", "b"} }, `config: peers[1]: want "host:port", got "b"`},
		{"netpayload", func(c *config.Config) { c.NetPayload = 70000 }, "config: netpayload: want an integer from 512 to 65000, got 70000"},
		{"maxnetmessage", func(c *config.Config) { c.MaxNetMessage = 0 }, "config: maxnetmessage: want an integer of at least 1024, got 0"},
		{"metrics", func(c *config.Config) { c.Metrics = "9090" }, `config: metrics: want "host:port", got "9090"`},
		{"key length", func(c *config.Config) { c.Keys = []config.Key{{ID: 1, Secret: []byte("short")}} }, "config: keys[0].secret: want 32 bytes, got 5"},
		{"key id", func(c *config.Config) { c.Keys = []config.Key{{ID: 1, Secret: seq(0)}, {ID: 1, Secret: seq(1)}} }, "config: keys[1].id: duplicate key id 1 (also keys[0])"},
		{"no control", func(c *config.Config) { delete(c.Channels, config.ControlChannel) }, `config: channels: missing the "control" channel`},
		{"nil channels", func(c *config.Config) { c.Channels = nil }, `config: channels: missing the "control" channel`},
		{"nil channel", func(c *config.Config) { c.Channels["A"] = nil }, "config: channels.A: nil *Channel"},
		{"channel name", func(c *config.Config) { c.Channels["a/b"] = config.NewChannel() }, `config: channels["a/b"]: invalid channel name: want only letters, digits, '.', '_' and '-', found '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.New()
			tt.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidChannelName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // "" for valid
	}{
		{"A", ""},
		{"control", ""},
		{"a.b_c-9", ""},
		{strings.Repeat("x", 64), ""},
		{"...", ""},
		{"", `config: invalid channel name "": want 1 to 64 characters, got 0`},
		{strings.Repeat("x", 65), "want 1 to 64 characters, got 65"},
		{"a b", `config: invalid channel name "a b": want only letters, digits, '.', '_' and '-', found ' '`},
		{"a/b", "found '/'"},
		{"é", "found 'é'"},
		{".", `config: invalid channel name ".": "." and ".." are reserved`},
		{"..", `"." and ".." are reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := config.ValidChannelName(tt.name)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ValidChannelName(%q) = %v, want nil", tt.name, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ValidChannelName(%q) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestClone(t *testing.T) {
	t.Parallel()
	orig := config.Default()
	orig.Peers = []string{"a:1"}
	orig.Keys = []config.Key{{ID: 1, Secret: seq(1)}}
	keep := dump(orig)

	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) || !equalConfig(c, orig) {
		t.Fatalf("Clone differs:\n%s\n%s", dump(c), keep)
	}
	c.Peers[0] = "changed:1"
	c.Keys[0].Secret[0] = 99
	c.Keys[0].ID = 9
	c.Channels["A"].DumpToConsole = true
	c.Channels["new"] = config.NewChannel()
	delete(c.Channels, "B")
	if got := dump(orig); got != keep {
		t.Errorf("changing the clone changed the original:\n%s\nwas\n%s", got, keep)
	}
	if orig.Keys[0].Secret[0] != 1 {
		t.Error("Clone shares a secret")
	}
	if (*config.Config)(nil).Clone() != nil {
		t.Error("nil Clone is not nil")
	}
}

func TestMarshalJSON(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Keys = []config.Key{{ID: 1, Secret: seq(1)}, {ID: 2, Secret: seq(0xa0)}}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, secret := range []string{secret1, secret2} {
		if strings.Contains(s, secret) {
			t.Errorf("MarshalJSON shows a secret:\n%s", s)
		}
	}
	for _, want := range []string{`"secret": "REDACTED"`, `"socketmode": "0660"`, `"propagatetochannels": ".*"`, `"propagatetochannels": false`} {
		if !strings.Contains(s, want) {
			t.Errorf("MarshalJSON output lacks %s:\n%s", want, s)
		}
	}

	// Without keys, the output parses back to the same Config.
	c.Keys = nil
	b, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.Parse(b, "")
	if err != nil {
		t.Fatalf("Parse(MarshalJSON): %v\n%s", err, b)
	}
	if !equalConfig(back, c) {
		t.Errorf("round trip:\n%s\nwant\n%s", dump(back), dump(c))
	}
}

func TestKeyRedacted(t *testing.T) {
	t.Parallel()
	c := config.New()
	c.Keys = []config.Key{{ID: 3, Secret: seq(1)}}
	secretText := []string{secret1, fmt.Sprint(seq(1)), fmt.Sprintf("%x", seq(1)), fmt.Sprintf("%#v", seq(1))}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{c, *c, c.Keys, c.Keys[0]} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secretText {
				if strings.Contains(out, s) {
					t.Errorf("Sprintf(%q, %T) shows the secret: %s", verb, v, out)
				}
			}
		}
	}
	if got, want := c.Keys[0].String(), "Key{ID: 3, Secret: REDACTED}"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	b, err := json.Marshal(c.Keys[0])
	if err != nil || string(b) != `{"id":3,"secret":"REDACTED"}` {
		t.Errorf("json.Marshal(Key) = %s, %v", b, err)
	}
}

// seq returns 32 bytes counting up from first.
func seq(first byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

func mustPattern(t testing.TB, re string) config.Propagation {
	t.Helper()
	p, err := config.PropagatePattern(re)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dump shows every field of c, secrets included, for test failures.
func dump(c *config.Config) string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	d := *c
	d.Channels = nil
	d.Keys = nil
	fmt.Fprintf(&b, "%+v\n", d)
	for _, k := range c.Keys {
		fmt.Fprintf(&b, "  key %d %x\n", k.ID, k.Secret)
	}
	for _, name := range c.ChannelNames() {
		ch := c.Channels[name]
		if ch == nil {
			fmt.Fprintf(&b, "  channel %s <nil>\n", name)
			continue
		}
		fmt.Fprintf(&b, "  channel %s propagate=%s net=%t console=%t accept=%t durable=%+v\n", name, ch.Propagate, ch.PropagateToNet, ch.DumpToConsole, ch.AcceptNet, ch.Durable)
	}
	return b.String()
}
