package service

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestConfigPath(t *testing.T) {
	t.Parallel()
	regErr := errors.New("access denied")
	reg := func(v string) func() (string, error) {
		return func() (string, error) { return v, nil }
	}
	failing := func() (string, error) { return "", regErr }
	tests := []struct {
		name       string
		args       []string
		lookup     func() (string, error)
		wantPath   string
		wantSource string
		wantErr    string // substring; "" means no error
	}{
		{"flag with space", []string{"-config", `C:\nc\config.json`}, reg(`D:\other.json`), `C:\nc\config.json`, SourceFlag, ""},
		{"flag with equals", []string{"-config=/etc/netcluster/config.json"}, nil, "/etc/netcluster/config.json", SourceFlag, ""},
		{"double dash", []string{"--config", "c.json"}, nil, "c.json", SourceFlag, ""},
		{"double dash equals", []string{"--config=c.json"}, nil, "c.json", SourceFlag, ""},
		{"among other flags", []string{"-v", "-config", "c.json", "-socketdir", "/run/x"}, nil, "c.json", SourceFlag, ""},
		{"last wins", []string{"-config", "a.json", "-config=b.json"}, nil, "b.json", SourceFlag, ""},
		{"path with spaces", []string{"-config", `C:\Program Files\netcluster\config.json`}, nil, `C:\Program Files\netcluster\config.json`, SourceFlag, ""},
		{"registry", []string{"-v"}, reg(`C:\nc\config.json`), `C:\nc\config.json`, SourceRegistry, ""},
		{"registry empty value", nil, reg(""), "", SourceDefault, ""},
		{"no registry lookup", nil, nil, "", SourceDefault, ""},
		{"default", []string{}, reg(""), "", SourceDefault, ""},
		{"not a flag", []string{"config", "x.json"}, nil, "", SourceDefault, ""},
		{"other flag with prefix", []string{"-configx", "x.json"}, nil, "", SourceDefault, ""},
		{"after --", []string{"--", "-config", "x.json"}, nil, "", SourceDefault, ""},
		{"registry error", nil, failing, "", "", `HKLM\Software\Netcluster value conf: access denied`},
		{"registry error hidden by flag", []string{"-config", "a.json"}, failing, "a.json", SourceFlag, ""},
		{"flag without path", []string{"-config"}, nil, "", "", "-config needs a path"},
		{"flag with empty path", []string{"-config="}, nil, "", "", "-config needs a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, source, err := ConfigPath(tt.args, tt.lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigPath(%q) err = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				if tt.lookup != nil && !errors.Is(err, regErr) && strings.Contains(tt.wantErr, "HKLM") {
					t.Errorf("err = %v does not wrap the registry error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigPath(%q): %v", tt.args, err)
			}
			if path != tt.wantPath || source != tt.wantSource {
				t.Errorf("ConfigPath(%q) = %q, %q, want %q, %q", tt.args, path, source, tt.wantPath, tt.wantSource)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantVerb Verb
		wantRest []string
		wantErr  string
	}{
		{"no args", nil, VerbNone, nil, ""},
		{"flags only", []string{"-config", "c.json"}, VerbNone, []string{"-config", "c.json"}, ""},
		{"install", []string{"install"}, VerbInstall, []string{}, ""},
		{"install with service args", []string{"install", "-config", `C:\nc\c.json`}, VerbInstall, []string{"-config", `C:\nc\c.json`}, ""},
		{"uninstall", []string{"uninstall"}, VerbUninstall, nil, ""},
		{"start", []string{"start"}, VerbStart, nil, ""},
		{"stop", []string{"stop"}, VerbStop, nil, ""},
		{"stop extra", []string{"stop", "now"}, VerbNone, nil, `stop takes no arguments, got ["now"]`},
		{"uninstall extra", []string{"uninstall", "-force"}, VerbNone, nil, "uninstall takes no arguments"},
		{"unknown", []string{"restart"}, VerbNone, nil, `unknown command "restart": want install, uninstall, start or stop`},
		{"case matters", []string{"Install"}, VerbNone, nil, `unknown command "Install"`},
		{"config path as in the original", []string{`C:\nc\config.json`}, VerbNone, nil, `use -config C:\nc\config.json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verb, rest, err := ParseCommand(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCommand(%q) err = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.args, err)
			}
			if verb != tt.wantVerb || !slices.Equal(rest, tt.wantRest) {
				t.Errorf("ParseCommand(%q) = %q, %q, want %q, %q", tt.args, verb, rest, tt.wantVerb, tt.wantRest)
			}
		})
	}
}
