package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/config"
)

// Secrets for tests: the bytes 1..32 and 0xa0..0xbf.
const (
	secret1 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	secret2 = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="
)

// badConfigs are documents Parse must reject, each with a substring of the
// error: file, line, column, key path and problem. FuzzParse starts from
// them too.
var badConfigs = []struct {
	name, in, want string
}{
	// Document shape and syntax.
	{"empty", ``, `x.json:1:1: syntax error: parsing value: unexpected EOF`},
	{"syntax missing comma", "{\n  \"port\": 4454\n  \"addr\": \"x\"\n}", `x.json:3:3: syntax error: invalid character '"' after object value`},
	{"syntax unterminated comment", "{\n  /* open\n}", `x.json:2:3: syntax error: parsing comment: unexpected EOF`},
	{"syntax bad literal", `{"port": 0x10}`, `x.json:1:10: syntax error: invalid literal: 0x10`},
	{"too deep", `{"peers": ` + strings.Repeat("[", 40), `x.json:1:42: syntax error: nested deeper than 32 levels`},
	{"too deep after comment", "// {{{{\n{\"peers\": /* ]] */ " + strings.Repeat("[", 40), `x.json:2:51: syntax error: nested deeper than 32 levels`},
	{"not an object array", `[]`, `x.json:1:1: want an object, got an array`},
	{"not an object string", "// comment\n\"str\"", `x.json:2:1: want an object, got "str"`},
	{"not an object null", `null`, `x.json:1:1: want an object, got null`},

	// Keys.
	{"unknown top key", `{"prot": 1}`, `x.json:1:2: prot: unknown key (did you mean "port"?)`},
	{"unknown top key case", `{"Port": 1}`, `x.json:1:2: Port: unknown key (did you mean "port"?)`},
	{"unknown top key far", `{"colour": 1}`, `x.json:1:2: colour: unknown key`},
	{"unknown odd key", `{"a b": 1}`, `x.json:1:2: ["a b"]: unknown key`},
	{"unknown channel key", "{\n  \"channels\": {\n    \"A\": {\"propagatetochanels\": \".*\"}\n  }\n}", `x.json:3:11: channels.A.propagatetochanels: unknown key (did you mean "propagatetochannels"?)`},
	{"unknown key field", `{"keys": [{"id": 1, "secret": "` + secret1 + `", "kid": 2}]}`, `x.json:1:79: keys[0].kid: unknown key (did you mean "id"?)`},
	{"duplicate top key", "{\n  \"port\": 1,\n  \"port\": 2\n}", `x.json:3:3: port: duplicate key (first at 2:3)`},
	{"duplicate escaped key", `{"port": 1, "p\u006frt": 2}`, `x.json:1:13: port: duplicate key (first at 1:2)`},
	{"duplicate channel", `{"channels": {"A": {}, "A": {}}}`, `x.json:1:24: channels.A: duplicate key (first at 1:15)`},
	{"duplicate channel key", `{"channels": {"A": {"acceptnet": true, "acceptnet": false}}}`, `x.json:1:40: channels.A.acceptnet: duplicate key (first at 1:21)`},

	// Integers.
	{"port string", `{"port": "abc"}`, `x.json:1:10: port: want an integer from 1 to 65535, got "abc"`},
	{"port too big", `{"port": 70000}`, `x.json:1:10: port: want an integer from 1 to 65535, got 70000`},
	{"port zero", `{"port": 0}`, `x.json:1:10: port: want an integer from 1 to 65535, got 0`},
	{"port fraction", `{"port": 4454.5}`, `x.json:1:10: port: want an integer from 1 to 65535, got 4454.5`},
	{"port exponent", `{"port": 4e3}`, `x.json:1:10: port: want an integer from 1 to 65535, got 4e3`},
	{"port huge", `{"port": 99999999999999999999999}`, `x.json:1:10: port: want an integer from 1 to 65535, got 99999999999999999999999`},
	{"port tab column", "{\n\t\"port\": true}", `x.json:2:10: port: want an integer from 1 to 65535, got true`},
	{"maxframe small", `{"maxframe": 100}`, `x.json:1:14: maxframe: want an integer from 1024 to 1073741824, got 100`},
	{"maxframe big", `{"maxframe": 1073741825}`, `x.json:1:14: maxframe: want an integer from 1024 to 1073741824, got 1073741825`},
	{"outbuffer small", `{"outbuffer": 1000}`, `x.json:1:15: outbuffer: want an integer from 65536 to 4294967296, got 1000`},
	{"memorylimit small", `{"memorylimit": 1000}`, `x.json:1:17: memorylimit: want an integer of at least 16777216, got 1000`},
	{"ttl negative", `{"ttl": -1}`, `x.json:1:9: ttl: want an integer from 0 to 255, got -1`},
	{"ttl big", `{"ttl": 256}`, `x.json:1:9: ttl: want an integer from 0 to 255, got 256`},
	{"netpayload small", `{"netpayload": 100}`, `x.json:1:16: netpayload: want an integer from 512 to 65000, got 100`},
	{"maxnetmessage small", `{"maxnetmessage": 10}`, `x.json:1:19: maxnetmessage: want an integer of at least 1024, got 10`},
	{"maxnetmessage object", `{"maxnetmessage": {}}`, `x.json:1:19: maxnetmessage: want an integer of at least 1024, got an object`},

	// Booleans.
	{"dumpnet string", `{"dumpnet": "yes"}`, `x.json:1:13: dumpnet: want true or false, got "yes"`},
	{"connecttonet number", `{"connecttonet": 1}`, `x.json:1:18: connecttonet: want true or false, got 1`},
	{"startcontrol null", `{"startcontrol": null}`, `x.json:1:18: startcontrol: want true or false, got null`},
	{"multicastloop string", `{"multicastloop": "off"}`, `x.json:1:19: multicastloop: want true or false, got "off"`},
	{"multicastloop number", "{\n  \"multicastloop\": 0}", `x.json:2:20: multicastloop: want true or false, got 0`},
	{"netoffload string", `{"netoffload": "false"}`, `x.json:1:16: netoffload: want true or false, got "false"`},
	{"netoffload null", `{"netoffload": null}`, `x.json:1:16: netoffload: want true or false, got null`},
	{"netoffload misspelt", `{"netofload": false}`, `x.json:1:2: netofload: unknown key (did you mean "netoffload"?)`},
	{"acceptnet string", `{"channels": {"A": {"acceptnet": "false"}}}`, `x.json:1:34: channels.A.acceptnet: want true or false, got "false"`},
	{"long value shortened", `{"dumpnet": "` + strings.Repeat("x", 100) + `"}`, `x.json:1:13: dumpnet: want true or false, got "` + strings.Repeat("x", 39) + `…`},

	// Strings.
	{"addr number", `{"addr": 1}`, `x.json:1:10: addr: want a string, got 1`},
	{"addr not ip", `{"addr": "foo"}`, `x.json:1:10: addr: want an IP address such as "239.255.44.54", got "foo"`},
	{"addr empty", `{"addr": ""}`, `x.json:1:10: addr: want an IP address such as "239.255.44.54", got ""`},
	{"socketdir array", `{"socketdir": []}`, `x.json:1:15: socketdir: want a string, got an array`},
	{"interface bool", `{"interface": false}`, `x.json:1:15: interface: want a string, got false`},
	{"nodename number", `{"nodename": 7}`, `x.json:1:14: nodename: want a string, got 7`},
	{"slowconsumer bad", `{"slowconsumer": "block"}`, `x.json:1:18: slowconsumer: want "drop" or "disconnect", got "block"`},
	{"metrics no port", `{"metrics": "localhost"}`, `x.json:1:13: metrics: want "host:port", got "localhost"`},
	{"metrics bad port", `{"metrics": ":http"}`, `x.json:1:13: metrics: want "host:port" with a port from 1 to 65535, got ":http"`},

	// Modes.
	{"socketmode digit", `{"socketmode": "0888"}`, `x.json:1:16: socketmode: want an octal mode string from "0600" to "0777" that lets the owner read and write, such as "0660", got "0888"`},
	{"socketmode without owner write", `{"controlsocketmode": "0000"}`, `x.json:1:23: controlsocketmode: want an octal mode string from "0600" to "0777" that lets the owner read and write, such as "0660", got "0000"`},
	{"socketmode number", `{"socketmode": 660}`, `x.json:1:16: socketmode: want an octal mode string from "0600" to "0777" that lets the owner read and write, such as "0660", got 660`},
	{"socketmode empty", `{"socketmode": ""}`, `x.json:1:16: socketmode: want an octal mode string`},
	{"controlsocketmode sticky", `{"controlsocketmode": "1777"}`, `x.json:1:23: controlsocketmode: want an octal mode string from "0600" to "0777" that lets the owner read and write, such as "0660", got "1777"`},

	// Peers.
	{"peers string", `{"peers": "a:1"}`, `x.json:1:11: peers: want an array of "host:port" strings, got "a:1"`},
	{"peer no port", `{"peers": ["10.0.0.1:1", "nohost"]}`, `x.json:1:26: peers[1]: want "host:port", got "nohost"`},
	{"peer port zero", `{"peers": ["h:0"]}`, `x.json:1:12: peers[0]: want "host:port" with a port from 1 to 65535, got "h:0"`},
	{"peer port signed", `{"peers": ["h:+80"]}`, `x.json:1:12: peers[0]: want "host:port" with a port from 1 to 65535, got "h:+80"`},
	{"peer no host", `{"peers": [":4454"]}`, `x.json:1:12: peers[0]: want "host:port" with a host, got ":4454"`},
	{"peer number", `{"peers": [1]}`, `x.json:1:12: peers[0]: want a string, got 1`},

	// Network keys.
	{"keys object", `{"keys": {}}`, `x.json:1:10: keys: want an array of {"id", "secret"} objects, got an object`},
	{"key not object", `{"keys": [1]}`, `x.json:1:11: keys[0]: want an object {"id": 0-255, "secret": "base64"}, got 1`},
	{"key bad base64", `{"keys": [{"id": 1, "secret": "!!!"}]}`, `x.json:1:31: keys[0].secret: want standard base64 (with padding) of 32 bytes; the value is not valid base64`},
	{"key short", `{"keys": [{"id": 1, "secret": "AAAAAAAAAAAAAAAAAAAAAA=="}]}`, `x.json:1:31: keys[0].secret: want standard base64 of 32 bytes, got 16 bytes`},
	{"key secret number", `{"keys": [{"id": 1, "secret": 5}]}`, `x.json:1:31: keys[0].secret: want a base64 string of 32 bytes, got a number`},
	{"key id big", `{"keys": [{"id": 256, "secret": "` + secret1 + `"}]}`, `x.json:1:18: keys[0].id: want an integer from 0 to 255, got 256`},
	{"key id string", `{"keys": [{"id": "1", "secret": "` + secret1 + `"}]}`, `x.json:1:18: keys[0].id: want an integer from 0 to 255, got "1"`},
	{"key missing secret", `{"keys": [{"id": 1}]}`, `x.json:1:11: keys[0]: missing key "secret"`},
	{"key missing id", `{"keys": [{"secret": "` + secret1 + `"}]}`, `x.json:1:11: keys[0]: missing key "id"`},
	{"key duplicate id", "{\"keys\": [\n  {\"id\": 1, \"secret\": \"" + secret1 + "\"},\n  {\"id\": 1, \"secret\": \"" + secret2 + "\"},\n]}", `x.json:3:10: keys[1].id: duplicate key id 1 (also keys[0])`},

	// Channels.
	{"channels array", `{"channels": []}`, `x.json:1:14: channels: want an object of channels by name, got an array`},
	{"channel not object", `{"channels": {"A": true}}`, `x.json:1:20: channels.A: want an object of channel settings, got true`},
	{"channel name space", `{"channels": {"a b": {}}}`, `x.json:1:15: channels["a b"]: invalid channel name: want only letters, digits, '.', '_' and '-', found ' '`},
	{"channel name empty", `{"channels": {"": {}}}`, `x.json:1:15: channels[""]: invalid channel name: want 1 to 64 characters, got 0`},
	{"channel name long", `{"channels": {"` + strings.Repeat("c", 65) + `": {}}}`, `x.json:1:15: channels.` + strings.Repeat("c", 65) + `: invalid channel name: want 1 to 64 characters, got 65`},
	{"channel name dotdot", `{"channels": {"..": {}}}`, `x.json:1:15: channels[".."]: invalid channel name: "." and ".." are reserved`},
	{"channel name unicode", `{"channels": {"caf\u00e9": {}}}`, `x.json:1:15: channels["café"]: invalid channel name: want only letters, digits, '.', '_' and '-', found 'é'`},
	{"bad regex", `{"channels": {"A": {"propagatetochannels": "("}}}`, "x.json:1:44: channels.A.propagatetochannels: invalid regular expression: error parsing regexp: missing closing ): `(`"},
	{"regex escaping anchor", `{"channels": {"A": {"propagatetochannels": "a)|(b"}}}`, "x.json:1:44: channels.A.propagatetochannels: invalid regular expression: error parsing regexp: unexpected ): `a)|(b`"},
	{"regex empty", `{"channels": {"A": {"propagatetochannels": ""}}}`, `x.json:1:44: channels.A.propagatetochannels: invalid regular expression: empty regular expression; use false for no channel`},
	{"propagation quoted false", `{"channels": {"A": {"propagatetochannels": "false"}}}`, `x.json:1:44: channels.A.propagatetochannels: want false without quotes, or a regular expression`},
	{"propagation number", `{"channels": {"A": {"propagatetochannels": 1}}}`, `x.json:1:44: channels.A.propagatetochannels: want false, true or a regular expression string, got 1`},
	{"propagation array", `{"channels": {"A": {"propagatetochannels": ["B"]}}}`, `x.json:1:44: channels.A.propagatetochannels: want false, true or a regular expression string, got an array`},
	{"dotted channel path", `{"channels": {"a.b": {"dumptoconsole": 1}}}`, `x.json:1:40: channels["a.b"].dumptoconsole: want true or false, got 1`},
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range badConfigs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.in), "x.json")
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error:\n  %v\nwant it to contain:\n  %s", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "config: x.json:") {
				t.Errorf("Parse error %q does not start with the file name", err)
			}
			var e *config.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %T is not a *config.Error", err)
			}
			if e.File != "x.json" || e.Line < 1 || e.Column < 1 {
				t.Errorf("Error has File %q, Line %d, Column %d; want x.json and a position", e.File, e.Line, e.Column)
			}
		})
	}
}

// TestParseDeep checks that a hostile nesting depth is an error, not a stack
// overflow that would crash the process.
func TestParseDeep(t *testing.T) {
	t.Parallel()
	_, err := config.Parse([]byte(strings.Repeat("[", 10<<20)), "x.json")
	if want := "x.json:1:33: syntax error: nested deeper than 32 levels"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse error = %v, want %q", err, want)
	}
}

func TestParseSecretNotShown(t *testing.T) {
	t.Parallel()
	// A secret one byte short: its text must not appear in the error.
	short := secret1[:40] + "=="
	_, err := config.Parse([]byte(`{"keys": [{"id": 1, "secret": "`+short+`"}]}`), "x.json")
	if err == nil {
		t.Fatal("Parse succeeded, want error")
	}
	if strings.Contains(err.Error(), short[:10]) {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestParseManyErrors(t *testing.T) {
	t.Parallel()
	in := "{\n  \"port\": \"x\",\n  \"ttl\": 300,\n  \"colour\": 1,\n}"
	_, err := config.Parse([]byte(in), "x.json")
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	want := "config: x.json:2:11: port: want an integer from 1 to 65535, got \"x\"\n" +
		"config: x.json:3:10: ttl: want an integer from 0 to 255, got 300\n" +
		"config: x.json:4:3: colour: unknown key"
	if err.Error() != want {
		t.Errorf("Parse error:\n%v\nwant:\n%s", err, want)
	}

	// At most ten problems, then a note.
	var b strings.Builder
	b.WriteString("{")
	for i := range 15 {
		b.WriteString(`"unknown` + strings.Repeat("x", i) + `": 1,`)
	}
	b.WriteString("}")
	_, err = config.Parse([]byte(b.String()), "x.json")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 11 || lines[10] != "config: x.json: too many errors" {
		t.Errorf("Parse error has %d lines, last %q; want 11, the last \"config: x.json: too many errors\"", len(lines), lines[len(lines)-1])
	}
}

func TestParseDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	in := []byte("\uFEFF{ /* c */ \"port\": 1, // c\n \"channels\": {},}")
	orig := string(in)
	c, err := config.Parse(in, "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 1 {
		t.Errorf("Port = %d, want 1", c.Port)
	}
	if string(in) != orig {
		t.Errorf("Parse changed its input to %q", in)
	}
}

func TestParseBOMPosition(t *testing.T) {
	t.Parallel()
	_, err := config.Parse([]byte("\uFEFF{\"port\": 0}"), "x.json")
	if err == nil || !strings.Contains(err.Error(), "x.json:1:13: port:") {
		t.Errorf("Parse error = %v, want one at 1:13 (byte column, after the 3-byte mark)", err)
	}
}
