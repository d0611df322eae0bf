package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/config"
)

// FuzzParse checks properties, not outputs: Parse never panics; every error
// it returns is a *config.Error with a position (positions are never lost);
// and an accepted document gives a Config that Validate accepts, that Clone
// copies exactly, and that MarshalJSON writes back to an equal Config.
func FuzzParse(f *testing.F) {
	for _, tt := range badConfigs {
		f.Add([]byte(tt.in))
	}
	for _, tt := range badNATSConfigs {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(`{"nats": {"urls": ["nats://u:p@h:1", "tls://h"], "user": "u", "password": "p", "tls": {"cert": "c", "key": "k"}}, "channels": {"A": {"durable": {"maxbytes": "2KB"}}}}`))
	f.Add(config.DefaultFile())
	if b, err := os.ReadFile("testdata/seed-sample.jsonc"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"keys": [{"id": 1, "secret": "` + secret1 + `"}], "peers": ["a:1"], "channels": {"x": {"propagatetochannels": "x|y"}}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "f.json")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a Config and an error")
			}
			checkPositions(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a Config that Validate rejects: %v", err)
		}
		if _, ok := c.Channels[config.ControlChannel]; !ok {
			t.Fatal("no control channel")
		}
		d := c.Clone()
		if !reflect.DeepEqual(c, d) || !equalConfig(c, d) {
			t.Fatalf("Clone differs:\n%s\n%s", dump(c), dump(d))
		}

		// MarshalJSON writes every field but the secrets.
		d.Keys, d.Source = nil, ""
		if n := d.NATS; n != nil {
			// Marshaled as REDACTED, which parses back as such.
			for i, u := range n.URLs {
				n.URLs[i] = config.RedactURL(u)
			}
			for _, p := range []*string{&n.Password, &n.Token} {
				if *p != "" {
					*p = "REDACTED"
				}
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Parse(b, "")
		if err != nil {
			t.Fatalf("Parse(MarshalJSON) failed: %v\n%s", err, b)
		}
		if !equalConfig(back, d) {
			t.Fatalf("MarshalJSON round trip differs:\n%s\n%s", dump(back), dump(d))
		}
	})
}

// checkPositions fails unless every error in err is a *config.Error naming
// f.json with a line and column, but for the "too many errors" note.
func checkPositions(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		var e *config.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not a *config.Error: %v", err, err)
		}
		if e.File != "f.json" || !strings.HasPrefix(e.Error(), "config: f.json:") {
			t.Fatalf("error without the file name: %v", e)
		}
		if (e.Line < 1 || e.Column < 1) && e.Error() != "config: f.json: too many errors" {
			t.Fatalf("error without a position: %v", e)
		}
	}
}
