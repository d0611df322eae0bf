package config_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
)

// badNATSConfigs are nats blocks and durable channels Parse must reject.
var badNATSConfigs = []struct {
	name, in, want string
}{
	{"nats not object", `{"nats": true}`, `x.json:1:10: nats: want an object of NATS settings, got true`},
	{"nats unknown key", `{"nats": {"urls": ["nats://h"], "url": "x"}}`, `x.json:1:33: nats.url: unknown key (did you mean "urls"?)`},
	{"nats no urls", `{"nats": {}}`, `x.json:1:10: nats.urls: want at least one URL such as "nats://127.0.0.1:4222"`},
	{"nats empty urls", `{"nats": {"urls": []}}`, `x.json:1:19: nats.urls: want at least one URL`},
	{"nats urls string", `{"nats": {"urls": "nats://h"}}`, `x.json:1:19: nats.urls: want an array of URLs such as ["nats://127.0.0.1:4222"], got "nats://h"`},
	{"nats url scheme", `{"nats": {"urls": ["http://h:4222"]}}`, `x.json:1:20: nats.urls[0]: want the scheme nats://, tls://, ws:// or wss://, got "http://h:4222"`},
	{"nats url no scheme", `{"nats": {"urls": ["h:4222"]}}`, `x.json:1:20: nats.urls[0]: want a URL such as "nats://127.0.0.1:4222", got "h:4222"`},
	{"nats url port", `{"nats": {"urls": ["nats://h:0"]}}`, `x.json:1:20: nats.urls[0]: want a port from 1 to 65535 in "nats://h:0"`},
	{"nats url path", `{"nats": {"urls": ["nats://h/x"]}}`, `x.json:1:20: nats.urls[0]: want no path, query or fragment in "nats://h/x"`},
	{"nats url password hidden", `{"nats": {"urls": ["http://u:hunter2@h"]}}`, `nats.urls[0]: want the scheme nats://, tls://, ws:// or wss://, got "http://u:REDACTED@h"`},
	{"nats url number", `{"nats": {"urls": [7]}}`, `x.json:1:20: nats.urls[0]: want a string, got 7`},
	{"nats two credentials", `{"nats": {"urls": ["nats://h"], "creds": "a.creds", "token": "t"}}`, `x.json:1:62: nats.token: set with creds; give one way to authenticate`},
	{"nats user without password", `{"nats": {"urls": ["nats://h"], "user": "u"}}`, `x.json:1:41: nats.user: needs password`},
	{"nats password without user", `{"nats": {"urls": ["nats://h"], "password": "p"}}`, `x.json:1:45: nats.password: needs user`},
	{"nats tls cert without key", `{"nats": {"urls": ["nats://h"], "tls": {"cert": "c.pem"}}}`, `x.json:1:40: nats.tls: cert needs key`},
	{"nats tls unknown", `{"nats": {"urls": ["nats://h"], "tls": {"insecure": true}}}`, `x.json:1:41: nats.tls.insecure: unknown key`},
	{"nats tls string", `{"nats": {"urls": ["nats://h"], "tls": "yes"}}`, `x.json:1:40: nats.tls: want an object {"ca", "cert", "key", "servername"}, got "yes"`},
	{"nats prefix wildcard", `{"nats": {"urls": ["nats://h"], "prefix": "a.*"}}`, `x.json:1:43: nats.prefix: want subject tokens of letters, digits, '_' and '-' joined by '.', got "a.*": found '*'`},
	{"nats prefix empty token", `{"nats": {"urls": ["nats://h"], "prefix": "a..b"}}`, `nats.prefix: want subject tokens of letters, digits, '_' and '-' joined by '.', got "a..b": empty token`},
	{"nats cluster dot", `{"nats": {"urls": ["nats://h"], "cluster": "a.b"}}`, `x.json:1:44: nats.cluster: want one subject token of letters, digits, '_' and '-', got "a.b": found '.'`},
	{"nats cluster empty", `{"nats": {"urls": ["nats://h"], "cluster": ""}}`, `nats.cluster: want one subject token of letters, digits, '_' and '-', got "": empty token`},
	{"nats outbuffer negative", `{"nats": {"urls": ["nats://h"], "outbuffer": -1}}`, `x.json:1:46: nats.outbuffer: want an integer from 0 to 4294967296, got -1`},
	{"nats name number", `{"nats": {"urls": ["nats://h"], "name": 1}}`, `x.json:1:41: nats.name: want a string, got 1`},
	{"addr empty without nats", `{"addr": ""}`, `x.json:1:10: addr: want an IP address such as "239.255.44.54", got "" (no multicast needs a nats block)`},
	{"durable without nats", `{"channels": {"A": {"durable": {}}}}`, `x.json:1:32: channels.A.durable: needs the nats block`},
	{"durable not object", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": true}}}`, `x.json:1:64: channels.A.durable: want an object {"maxage", "maxbytes", "replicas"}, got true`},
	{"durable maxage bad", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxage": "1 day"}}}}`, `x.json:1:75: channels.A.durable.maxage: want a duration of at least 1s such as "24h" or "90m", got "1 day"`},
	{"durable maxage short", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxage": "10ms"}}}}`, `channels.A.durable.maxage: want a duration of at least 1s`},
	{"durable maxbytes unit", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxbytes": "1GB2"}}}}`, `x.json:1:77: channels.A.durable.maxbytes: want a size in bytes such as 1073741824 or "1GiB"`},
	{"durable maxbytes zero", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxbytes": 0}}}}`, `channels.A.durable.maxbytes: want a size in bytes`},
	{"durable maxbytes lowercase", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxbytes": "1gib"}}}}`, `channels.A.durable.maxbytes: want a size in bytes`},
	{"durable replicas", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"replicas": 7}}}}`, `x.json:1:77: channels.A.durable.replicas: want an integer from 1 to 5, got 7`},
	{"durable unknown", `{"nats": {"urls": ["nats://h"]}, "channels": {"A": {"durable": {"maxmsgs": 7}}}}`, `x.json:1:65: channels.A.durable.maxmsgs: unknown key`},
}

func TestParseNATSErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range badNATSConfigs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.in), "x.json")
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if c != nil {
				t.Error("Parse returned a Config with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error:\n  %v\nwant it to contain:\n  %s", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "config: x.json:1:") {
				t.Errorf("Parse error %q names no position", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Parse error shows a password: %v", err)
			}
		})
	}
}

func TestParseNATS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want func(c *config.Config)
	}{
		{"minimal", `{"connecttonet": true, "nats": {"urls": ["nats://127.0.0.1:4222"]}}`, func(c *config.Config) {
			c.ConnectToNet = true
			c.Addr = "" // no multicast
			c.NATS = config.NewNATS()
			c.NATS.URLs = []string{"nats://127.0.0.1:4222"}
		}},
		{"addr given too", `{"addr": "239.1.2.3", "nats": {"urls": ["nats://h"]}}`, func(c *config.Config) {
			c.Addr = "239.1.2.3"
			c.NATS = config.NewNATS()
			c.NATS.URLs = []string{"nats://h"}
		}},
		{"every key", `{"nats": {
			"urls": ["nats://a:4222", "tls://b", "ws://c:80", "wss://u:p@d:443/"], "name": "n",
			"user": "u", "password": "p",
			"tls": {"ca": "ca.pem", "cert": "c.pem", "key": "k.pem", "servername": "s"},
			"prefix": "acme.nc", "cluster": "prod-1", "outbuffer": 0},
			"channels": {"A": {"durable": {"maxage": "90m", "maxbytes": "512MiB", "replicas": 3}}, "B": {"durable": {"maxbytes": 2000}}}}`, func(c *config.Config) {
			c.Addr = ""
			c.NATS = &config.NATS{
				URLs: []string{"nats://a:4222", "tls://b", "ws://c:80", "wss://u:p@d:443/"}, Name: "n",
				User: "u", Password: "p",
				TLS:    config.TLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem", ServerName: "s"},
				Prefix: "acme.nc", Cluster: "prod-1", OutBuffer: 0,
			}
			c.Channels["A"] = &config.Channel{AcceptNet: true, Durable: &config.Durable{MaxAge: 90 * time.Minute, MaxBytes: 512 << 20, Replicas: 3}}
			c.Channels["B"] = &config.Channel{AcceptNet: true, Durable: &config.Durable{MaxAge: 24 * time.Hour, MaxBytes: 2000, Replicas: 1}}
		}},
		{"durable defaults", `{"nats": {"urls": ["nats://h"], "token": "t"}, "channels": {"A": {"durable": {}}}}`, func(c *config.Config) {
			c.Addr = ""
			c.NATS = config.NewNATS()
			c.NATS.URLs, c.NATS.Token = []string{"nats://h"}, "t"
			c.Channels["A"] = &config.Channel{AcceptNet: true, Durable: config.NewDurable()}
		}},
		{"sizes", `{"nats": {"urls": ["nats://h"], "creds": "x.creds"}, "channels": {"A": {"durable": {"maxbytes": "3GB"}}, "B": {"durable": {"maxbytes": "7KiB"}}}}`, func(c *config.Config) {
			c.Addr = ""
			c.NATS = config.NewNATS()
			c.NATS.URLs, c.NATS.Creds = []string{"nats://h"}, "x.creds"
			c.Channels["A"] = &config.Channel{AcceptNet: true, Durable: &config.Durable{MaxAge: 24 * time.Hour, MaxBytes: 3e9, Replicas: 1}}
			c.Channels["B"] = &config.Channel{AcceptNet: true, Durable: &config.Durable{MaxAge: 24 * time.Hour, MaxBytes: 7 << 10, Replicas: 1}}
		}},
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
			// The file format round trips (no secrets in these but "p"/"t",
			// which marshal redacts: compare with them redacted).
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := config.Parse(b, "t.jsonc")
			if err != nil {
				t.Fatalf("Parse(MarshalJSON): %v\n%s", err, b)
			}
			if back.NATS.Password != "" && back.NATS.Password != "REDACTED" || back.NATS.Token != "" && back.NATS.Token != "REDACTED" {
				t.Errorf("MarshalJSON kept a secret: %s", b)
			}
			back.NATS.Password, back.NATS.Token, back.NATS.URLs = got.NATS.Password, got.NATS.Token, got.NATS.URLs
			if !equalConfig(back, got) {
				t.Errorf("round trip:\n%s\nwant\n%s", dump(back), dump(got))
			}
			if !got.ConnectToNet && (got.UDP() || got.Backbone()) {
				t.Errorf("UDP %t, Backbone %t without connecttonet", got.UDP(), got.Backbone())
			}
		})
	}
}

func TestNetworksChosen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in            string
		udp, backbone bool
	}{
		{`{"connecttonet": true}`, true, false},
		{`{"connecttonet": true, "nats": {"urls": ["nats://h"]}}`, false, true},
		{`{"connecttonet": true, "addr": "239.1.1.1", "nats": {"urls": ["nats://h"]}}`, true, true},
		{`{"connecttonet": true, "peers": ["h:1"], "nats": {"urls": ["nats://h"]}}`, true, true},
		{`{"connecttonet": false, "nats": {"urls": ["nats://h"]}}`, false, false},
	}
	for _, tt := range tests {
		c, err := config.Parse([]byte(tt.in), "t.json")
		if err != nil {
			t.Fatal(err)
		}
		if c.UDP() != tt.udp || c.Backbone() != tt.backbone {
			t.Errorf("%s: UDP %t, Backbone %t; want %t, %t", tt.in, c.UDP(), c.Backbone(), tt.udp, tt.backbone)
		}
	}
}

func TestNATSRedacted(t *testing.T) {
	t.Parallel()
	c := config.New()
	c.NATS = config.NewNATS()
	c.NATS.URLs = []string{"nats://alice:s3cr3tpw@h:4222", "nats://t0k3nvalue@h2"}
	c.NATS.User, c.NATS.Password = "alice", "hunter2pw"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{c, *c, c.NATS} {
			out := fmt.Sprintf(verb, v)
			for _, s := range []string{"s3cr3tpw", "t0k3nvalue", "hunter2pw"} {
				if strings.Contains(out, s) {
					t.Errorf("Sprintf(%q, %T) shows %q: %s", verb, v, s, out)
				}
			}
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s3cr3tpw", "t0k3nvalue", "hunter2pw"} {
		if strings.Contains(string(b), s) {
			t.Errorf("MarshalJSON shows %q: %s", s, b)
		}
	}
	for _, want := range []string{`"password":"REDACTED"`, `nats://alice:REDACTED@h:4222`, `nats://REDACTED@h2`, `"user":"alice"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("MarshalJSON lacks %s: %s", want, b)
		}
	}
	// Clone copies the block.
	d := c.Clone()
	d.NATS.URLs[0] = "x"
	if c.NATS.URLs[0] == "x" {
		t.Error("Clone shares the nats URLs")
	}
}

func TestValidateNATS(t *testing.T) {
	t.Parallel()
	c := config.New()
	c.Channels["A"] = &config.Channel{Durable: config.NewDurable()}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "channels.A.durable: needs the nats block") {
		t.Errorf("Validate = %v, want the durable channel refused", err)
	}
	c.NATS = config.NewNATS()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "nats.urls: want at least one URL") {
		t.Errorf("Validate = %v, want the missing URL", err)
	}
	c.NATS.URLs = []string{"nats://h"}
	c.Channels["A"].Durable.Replicas = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "channels.A.durable.replicas: want an integer from 1 to 5, got 0") {
		t.Errorf("Validate = %v, want replicas refused", err)
	}
	c.Channels["A"].Durable.Replicas = 1
	c.Addr = ""
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
