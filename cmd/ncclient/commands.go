package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
)

// argKind says what an argument names, for checks and tab completion.
type argKind int

const (
	kindText argKind = iota
	kindChannel
	kindAgent // an agent id of the channel given before it
	kindPath
	kindJSON
	kindPattern
)

// arg is one positional argument of a command.
type arg struct {
	name     string
	kind     argKind
	optional bool
	byRun    bool // the command checks it (emit's DATA: JSON unless -text)
}

// command is one ncclient command, on the command line and in the REPL.
type command struct {
	name    string
	aliases []string // accepted, not offered by completion
	args    []arg
	help    string
	repl    bool // available in the REPL
	run     func(ctx context.Context, c *client, args []string) error
}

// commands is the list of commands, in the order help shows them: the
// control commands of control.Commands, then those of the bus.
var commands = append(controlCommands(), []*command{
	{name: "bench",
		args: []arg{{name: "CHANNEL", kind: kindChannel}},
		help: "a load test: publishers, subscribers, msgs/s, MB/s, latency percentiles (not in the REPL)",
		run:  bench},
	{name: "top",
		help: "a live full-screen view of the server: rates per channel and peer (plain lines when not a terminal)",
		run:  top},
	{name: "emit", repl: true,
		// DATA is checked by emit: JSON, unless -text or "-".
		args: []arg{{name: "CHANNEL", kind: kindChannel}, {name: "EVENT"}, {name: "DATA", kind: kindJSON, optional: true, byRun: true}},
		help: "emit an event and say what was sent; its data is JSON, null if absent",
		run:  emit},
	{name: "listen",
		args: []arg{{name: "CHANNEL", kind: kindChannel}, {name: "PATTERN", kind: kindPattern, optional: true}},
		help: "print each message as one JSON object per line (not in the REPL)",
		run:  listen},
	{name: "request", repl: true,
		args: []arg{{name: "CHANNEL", kind: kindChannel}, {name: "EVENT"}, {name: "JSON", kind: kindJSON, optional: true}},
		help: "send a request and print the first reply; its data is JSON, null if absent",
		run:  request},
	{name: "reply",
		args: []arg{{name: "CHANNEL", kind: kindChannel}, {name: "PATTERN", kind: kindPattern}},
		help: "answer requests by running a command (not in the REPL)",
		run:  reply},
}...)

// controlRuns are ncclient's side of each control command: how it asks
// and prints. A test checks every control command has one.
var controlRuns = map[string]func(ctx context.Context, c *client, args []string) error{
	control.CmdShowConfig:   showConfig,
	control.CmdReloadConfig: reloadConfig,
	control.CmdShowChannel:  showChannel,
	control.CmdShowClient:   showClient,
	control.CmdStats:        stats,
	control.CmdChannels:     channels,
}

// controlAliases are misspellings accepted for a command.
var controlAliases = map[string][]string{control.CmdReloadConfig: {"reloaconfig"}}

// controlArgs are the positional arguments that fill each request field.
var controlArgs = map[control.Field]arg{
	control.FieldPath:    {name: "PATH", kind: kindPath},
	control.FieldChannel: {name: "CHANNEL", kind: kindChannel},
	control.FieldID:      {name: "ID", kind: kindAgent},
}

// controlCommands makes a command of each control command: its arguments
// are the request's fields, in the table's order.
func controlCommands() []*command {
	var out []*command
	for _, cc := range control.Commands() {
		cmd := &command{name: cc.Name, aliases: controlAliases[cc.Name], help: cc.Help, repl: true, run: controlRuns[cc.Name]}
		for _, f := range cc.Fields {
			cmd.args = append(cmd.args, controlArgs[f])
		}
		out = append(out, cmd)
	}
	return out
}

// lookup finds a command by name or alias; nil if there is none.
func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
		for _, a := range cmd.aliases {
			if a == name {
				return cmd
			}
		}
	}
	return nil
}

// synopsis returns "name ARG [OPT]".
func (cmd *command) synopsis() string {
	s := cmd.name
	for _, a := range cmd.args {
		if a.optional {
			s += " [" + a.name + "]"
		} else {
			s += " " + a.name
		}
	}
	switch cmd.name {
	case "listen":
		s += " [-n COUNT]"
	case "emit":
		s += " [-text] [-n COUNT] [-interval D]"
	case "bench":
		s += " [-pub N] [-sub N] [-size B] [-n COUNT]"
	case "reply":
		s += " [-group G] [-concurrency N] [-n COUNT] -- COMMAND [ARGS...]"
	}
	return s
}

// check checks the number of arguments and the ones whose form is known,
// naming the argument at fault.
func (cmd *command) check(args []string) error {
	required := 0
	for _, a := range cmd.args {
		if !a.optional {
			required++
		}
	}
	if len(args) < required {
		return fmt.Errorf("%s: missing argument %s (usage: %s)", cmd.name, cmd.args[len(args)].name, cmd.synopsis())
	}
	if len(args) > len(cmd.args) {
		return fmt.Errorf("%s: too many arguments: %q (usage: %s)", cmd.name, args[len(cmd.args):], cmd.synopsis())
	}
	for i, v := range args {
		a := cmd.args[i]
		var err error
		switch {
		case a.byRun:
		case a.kind == kindChannel:
			err = config.ValidChannelName(v)
		case a.kind == kindJSON:
			var x any
			if e := json.Unmarshal([]byte(v), &x); e != nil {
				err = fmt.Errorf("not valid JSON: %v", e)
			}
		case a.kind == kindPattern:
			if _, e := regexp.Compile(`^(?:` + v + `)$`); e != nil {
				err = fmt.Errorf("not a valid pattern: %v", e)
			}
		default:
			if v == "" {
				err = fmt.Errorf("empty")
			}
		}
		if err != nil {
			return fmt.Errorf("%s: argument %s: %v", cmd.name, a.name, err)
		}
	}
	return nil
}

func showConfig(ctx context.Context, c *client, _ []string) error {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdShowConfig})
	if err != nil {
		return fmt.Errorf("showconfig: %w", err)
	}
	if c.o.json {
		return printJSON(c.out, res)
	}
	return printConfig(c.out, res)
}

func reloadConfig(ctx context.Context, c *client, args []string) error {
	// The server reads the file: give it an absolute path. Client and
	// server share the host, so the client's working directory resolves
	// a relative one.
	path, err := filepath.Abs(args[0])
	if err != nil {
		return fmt.Errorf("reloadconfig: argument PATH: %w", err)
	}
	res, err := c.request(ctx, control.Request{Cmd: control.CmdReloadConfig, Path: path})
	if err != nil {
		return fmt.Errorf("reloadconfig: %w", err)
	}
	if c.o.json {
		return printJSON(c.out, res)
	}
	var r control.ReloadResult
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("reloadconfig: unreadable result: %w", err)
	}
	fmt.Fprintf(c.out, "reloaded %s: channels %s\n", r.Source, strings.Join(r.Channels, ", "))
	if len(r.Added) > 0 {
		fmt.Fprintf(c.out, "added:   %s\n", strings.Join(r.Added, ", "))
	}
	if len(r.Removed) > 0 {
		fmt.Fprintf(c.out, "removed: %s (their agents were disconnected)\n", strings.Join(r.Removed, ", "))
	}
	return nil
}

func showChannel(ctx context.Context, c *client, args []string) error {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdShowChannel, Channel: args[0]})
	if err != nil {
		return fmt.Errorf("showchannel: %w", err)
	}
	if c.o.json {
		return printJSON(c.out, res)
	}
	var ci control.ChannelInfo
	if err := json.Unmarshal(res, &ci); err != nil {
		return fmt.Errorf("showchannel: unreadable result: %w", err)
	}
	return printChannel(c.out, &ci)
}

func showClient(ctx context.Context, c *client, args []string) error {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdShowClient, Channel: args[0], ID: args[1]})
	if err != nil {
		return fmt.Errorf("showclient: %w", err)
	}
	if c.o.json {
		return printJSON(c.out, res)
	}
	var ai control.AgentInfo
	if err := json.Unmarshal(res, &ai); err != nil {
		return fmt.Errorf("showclient: unreadable result: %w", err)
	}
	return printAgent(c.out, &ai)
}

func stats(ctx context.Context, c *client, _ []string) error {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdStats})
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if c.o.json {
		return printJSON(c.out, res)
	}
	var st control.Stats
	if err := json.Unmarshal(res, &st); err != nil {
		return fmt.Errorf("stats: unreadable result: %w", err)
	}
	return printStats(c.out, &st)
}

func channels(ctx context.Context, c *client, _ []string) error {
	names, err := c.channelNames(ctx)
	if err != nil {
		return fmt.Errorf("channels: %w", err)
	}
	if c.o.json {
		b, _ := json.Marshal(names)
		return printJSON(c.out, b)
	}
	for _, n := range names {
		fmt.Fprintln(c.out, n)
	}
	return nil
}

// channelNames asks the server for its channel names.
func (c *client) channelNames(ctx context.Context) ([]string, error) {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdChannels})
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(res, &names); err != nil {
		return nil, fmt.Errorf("unreadable result: %w", err)
	}
	return names, nil
}
