package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The control commands.
const (
	CmdShowConfig   = "showconfig"
	CmdReloadConfig = "reloadconfig"
	CmdShowChannel  = "showchannel"
	CmdShowClient   = "showclient"
	CmdStats        = "stats"
	CmdChannels     = "channels"
)

// Field names a field of a Request, as spelt in its JSON.
type Field string

// The fields a command may take.
const (
	FieldPath    Field = "path"
	FieldChannel Field = "channel"
	FieldID      Field = "id"
)

// allFields are the argument fields of a Request, in the order errors
// name unexpected ones.
var allFields = []Field{FieldChannel, FieldID, FieldPath}

// Command describes one control command.
type Command struct {
	Name   string
	Fields []Field // the Request fields it requires; it takes no others
	Help   string  // one line, for help screens
}

// commands is the table of the commands, in the order help lists them.
// The server dispatches from it and ncclient's help and completion derive
// from it; a test checks the server handles every entry.
var commands = []Command{
	{Name: CmdShowConfig, Help: "the configuration in force, secrets redacted"},
	{Name: CmdReloadConfig, Fields: []Field{FieldPath},
		Help: "have the server read and apply a config file: all of it, or on error none"},
	{Name: CmdShowChannel, Fields: []Field{FieldChannel}, Help: "a channel's agents and counters"},
	{Name: CmdShowClient, Fields: []Field{FieldChannel, FieldID}, Help: "one agent of a channel"},
	{Name: CmdStats, Help: "counters per channel and in total, uptime"},
	{Name: CmdChannels, Help: "the channel names"},
}

// Commands returns the control commands, in the order help lists them.
// The slice is the caller's.
func Commands() []Command {
	out := slices.Clone(commands)
	for i := range out {
		out[i].Fields = slices.Clone(out[i].Fields)
	}
	return out
}

// Names returns the command names, sorted.
func Names() []string {
	out := make([]string, len(commands))
	for i, c := range commands {
		out[i] = c.Name
	}
	slices.Sort(out)
	return out
}

// Lookup returns the command named name; false if there is none.
func Lookup(name string) (Command, bool) {
	for _, c := range commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// ParseRequest decodes a request body strictly: unknown fields and
// trailing data are errors, so a typo never passes silently. It does not
// check the command; see [Request.Check].
func ParseRequest(body []byte) (*Request, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	req := new(Request)
	if err := dec.Decode(req); err != nil {
		return nil, fmt.Errorf("bad request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bad request: data after the JSON object")
	}
	return req, nil
}

// Check returns the request's command, or an error naming what is wrong:
// no command, an unknown one, a missing field, or a field the command
// does not take.
func (r *Request) Check() (Command, error) {
	want := strings.Join(Names(), ", ")
	if r.Cmd == "" {
		return Command{}, fmt.Errorf(`missing "cmd"; want one of %s`, want)
	}
	cmd, ok := Lookup(r.Cmd)
	if !ok {
		return Command{}, fmt.Errorf("unknown command %q; want one of %s", r.Cmd, want)
	}
	for _, f := range cmd.Fields {
		if r.field(f) == "" {
			return Command{}, fmt.Errorf("%s: missing %q", r.Cmd, f)
		}
	}
	for _, f := range allFields {
		if r.field(f) != "" && !slices.Contains(cmd.Fields, f) {
			return Command{}, fmt.Errorf("%s: unexpected field %q", r.Cmd, f)
		}
	}
	return cmd, nil
}

func (r *Request) field(f Field) string {
	switch f {
	case FieldPath:
		return r.Path
	case FieldChannel:
		return r.Channel
	case FieldID:
		return r.ID
	}
	return ""
}
