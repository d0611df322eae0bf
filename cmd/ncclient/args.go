package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/netcluster/netcluster/internal/qgroup"
)

// defaultTimeout bounds connecting and each request unless -timeout says
// otherwise.
const defaultTimeout = 5 * time.Second

// options are the parsed command line.
type options struct {
	socketDir   string
	json        bool
	timeout     time.Duration
	count       int           // listen, reply -n
	group       string        // reply -group
	concurrency int           // reply -concurrency
	command     []string      // reply: the command after "--"
	watch       time.Duration // stats -watch
	interval    time.Duration // emit -interval
	text        bool          // emit -text
	pubs, subs  int           // bench -pub, -sub
	size        int           // bench -size
	benchFlags  bool          // -pub, -sub or -size was given
	help        bool
	version     bool
	cmd         string
	args        []string
}

// parseArgs reads the command line. Flags may come anywhere, with one or
// two dashes, as "-flag value" or "-flag=value"; "--" ends them. An
// argument that starts with a dash but is valid JSON (a negative number
// for emit) is an argument, not a flag.
func parseArgs(args []string) (*options, error) {
	o := &options{timeout: defaultTimeout, pubs: 1, subs: 1, size: 128}
	var pos []string
	dashdash := -1 // where "--" was among the positional arguments
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			dashdash = len(pos)
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || json.Valid([]byte(a)) {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 == len(args) {
				return "", usageErrorf("flag -%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "h", "help":
			o.help = true
		case "version":
			o.version = true
		case "json":
			if !hasVal {
				o.json = true
				break
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, usageErrorf("flag -json: %q is not a boolean", val)
			}
			o.json = b
		case "socketdir":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, usageErrorf("flag -socketdir: empty directory")
			}
			o.socketDir = v
		case "timeout":
			v, err := value()
			if err != nil {
				return nil, err
			}
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, usageErrorf("flag -timeout: %q is not a positive duration such as 5s", v)
			}
			o.timeout = d
		case "group":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if p := qgroup.NameProblem(v); p != "" {
				return nil, usageErrorf("flag -group: %q: %s", v, p)
			}
			o.group = v
		case "concurrency":
			v, err := value()
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1024 {
				return nil, usageErrorf("flag -concurrency: %q is not a count from 1 to 1024", v)
			}
			o.concurrency = n
		case "text":
			o.text = true
		case "pub", "sub", "size":
			v, err := value()
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			lo, hi := map[string]int{"pub": 1, "sub": 0, "size": 8}[name], map[string]int{"pub": 256, "sub": 256, "size": 1 << 20}[name]
			if err != nil || n < lo || n > hi {
				return nil, usageErrorf("flag -%s: %q is not a number from %d to %d", name, v, lo, hi)
			}
			o.benchFlags = true
			switch name {
			case "pub":
				o.pubs = n
			case "sub":
				o.subs = n
			default:
				o.size = n
			}
		case "interval":
			v, err := value()
			if err != nil {
				return nil, err
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, usageErrorf("flag -interval: %q is not a duration such as 100ms", v)
			}
			o.interval = d
		case "watch":
			v, err := value()
			if err != nil {
				return nil, err
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond {
				return nil, usageErrorf("flag -watch: %q is not a duration of 100ms or more, such as 1s", v)
			}
			o.watch = d
		case "n":
			v, err := value()
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, usageErrorf("flag -n: %q is not a count (0 or more)", v)
			}
			o.count = n
		default:
			return nil, usageErrorf("unknown flag %s; run ncclient -h for the list", a)
		}
	}
	if len(pos) > 0 {
		o.cmd, o.args = pos[0], pos[1:]
	}
	if o.cmd == "reply" && dashdash >= 1 {
		// reply's command is everything after "--", flags included.
		o.args, o.command = pos[1:dashdash], pos[dashdash:]
	}
	return o, nil
}
