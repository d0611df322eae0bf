// Package harness runs netcluster and NATS side by side through the same
// scenarios and reports the medians.
//
// The parent process (Harness.Run) starts a fresh server for each run —
// ncserver, or a NATS server in a process of its own — and workers: the
// same executable started again in worker mode (see Child), one process
// per publisher and subscriber. Workers speak a line protocol on their
// standard streams: READY, GO, DONE {json}, STOP.
package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Options configure a Harness.
type Options struct {
	// Exe and ExeArgs start this program again: Exe ExeArgs... worker ...
	// must reach Child.
	Exe     string
	ExeArgs []string
	// NCServer is the ncserver binary; "" builds it from the netcluster
	// module (go list -m finds it through the replace directive).
	NCServer string
	// Rounds is how many times each system runs each scenario, alternating
	// netcluster and NATS. Default 3.
	Rounds int
	// Scale multiplies the message counts. Default 1.
	Scale float64
	// Only, if not empty, lists the scenario IDs to run.
	Only []string
	// Systems, if not empty, lists the systems to run.
	Systems []System
	// Timeout bounds each run of a scenario. Default 60s.
	Timeout time.Duration
	// NATSInline runs the NATS server inside this process instead of a
	// process of its own (S8 then measures netcluster only).
	NATSInline bool
	// ProfileDir, if set, receives a CPU profile of each worker and of
	// netcluster's server, which then runs as "ncserve" (the same server
	// package, embedded in this program) instead of ncserver.
	ProfileDir string
	// Trace adds an execution trace of each of those processes.
	Trace bool
	// Log receives progress lines. Nil discards them.
	Log io.Writer
}

// Harness runs scenarios.
type Harness struct {
	opts     Options
	tmp      string
	ncserver string
}

// New prepares a Harness: a temporary directory and, unless given, an
// ncserver binary. Close removes the directory.
func New(ctx context.Context, opts Options) (*Harness, error) {
	if opts.Rounds <= 0 {
		opts.Rounds = 3
	}
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if len(opts.Systems) == 0 {
		opts.Systems = []System{Netcluster, NATS}
	}
	// Socket paths must stay under ~104 bytes: a short directory.
	tmp, err := os.MkdirTemp("", "ncb")
	if err != nil {
		return nil, err
	}
	h := &Harness{opts: opts, tmp: tmp, ncserver: opts.NCServer}
	if h.ncserver == "" && opts.ProfileDir == "" && slices.Contains(opts.Systems, Netcluster) {
		fmt.Fprintln(opts.Log, "building ncserver…")
		if h.ncserver, err = buildNCServer(ctx, tmp); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	return h, nil
}

// Close removes the Harness's temporary files.
func (h *Harness) Close() error { return os.RemoveAll(h.tmp) }

// Run is one sample of a scenario.
type Run struct {
	Scenario string
	System   System
	Round    int
	Sample   Sample
	Err      string
	Elapsed  time.Duration
	// LoadBefore and LoadAfter are the machine's load averages (1, 5
	// and 15 minutes) before and after the run.
	LoadBefore, LoadAfter string
}

// Results are the samples of a whole run.
type Results struct {
	Scenarios []*Scenario
	Runs      []Run
	Rounds    int
	Scale     float64
	Systems   []System
	Elapsed   time.Duration
	Env       Env
}

// Run runs every selected scenario, opts.Rounds times per system,
// alternating the systems, each run bounded by opts.Timeout. A failing run
// is recorded and the others go on; Run fails only if ctx ends.
func (h *Harness) Run(ctx context.Context) (*Results, error) {
	start := time.Now()
	res := &Results{Rounds: h.opts.Rounds, Scale: h.opts.Scale, Systems: h.opts.Systems, Env: readEnv(ctx)}
	defer func() { res.Env.LoadAfter = loadAvg() }()
	for _, sc := range Scenarios(h.opts.Scale) {
		if len(h.opts.Only) > 0 && !slices.ContainsFunc(h.opts.Only, func(id string) bool { return strings.EqualFold(id, sc.ID) }) {
			continue
		}
		res.Scenarios = append(res.Scenarios, sc)
		systems := h.opts.Systems
		if sc.Ceiling {
			systems = []System{Relay}
		}
		for round := 1; round <= h.opts.Rounds; round++ {
			for _, sys := range systems {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				r := h.runOne(ctx, sc, sys, round)
				res.Runs = append(res.Runs, r)
				fmt.Fprintln(h.opts.Log, describeRun(sc, r))
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func (h *Harness) runOne(ctx context.Context, sc *Scenario, sys System, round int) Run {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	tag := fmt.Sprintf("%s-%s-r%d", sc.ID, sys, round)
	t0 := time.Now()
	load := loadAvg()
	s, err := sc.run(ctx, h, sys, tag)
	r := Run{Scenario: sc.ID, System: sys, Round: round, Sample: s, Elapsed: time.Since(t0), LoadBefore: load, LoadAfter: loadAvg()}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

func describeRun(sc *Scenario, r Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-4s round %d %-10s", sc.ID, r.Round, r.System)
	if r.Err != "" {
		fmt.Fprintf(&b, " FAILED: %s", r.Err)
		return b.String()
	}
	for i, m := range sc.Metrics {
		if i < len(r.Sample.Values) {
			fmt.Fprintf(&b, "  %s %s %s", m.Name, formatValue(r.Sample.Values[i]), m.Unit)
		}
	}
	if r.Sample.Dropped > 0 || r.Sample.Lost > 0 {
		fmt.Fprintf(&b, "  dropped %d lost %d", r.Sample.Dropped, r.Sample.Lost)
	}
	if r.Sample.Note != "" {
		fmt.Fprintf(&b, "  (%s)", r.Sample.Note)
	}
	fmt.Fprintf(&b, "  [%.1fs, load %s → %s]", r.Elapsed.Seconds(), r.LoadBefore, r.LoadAfter)
	return b.String()
}

// Median returns the median of metric i of scenario id for sys over the
// runs that succeeded, and how many there were. NaN if none.
func (r *Results) Median(id string, sys System, i int) (float64, int) {
	var v []float64
	for _, run := range r.Runs {
		if run.Scenario == id && run.System == sys && run.Err == "" && i < len(run.Sample.Values) {
			v = append(v, run.Sample.Values[i])
		}
	}
	return median(v), len(v)
}

// Drops sums the dropped and lost messages of scenario id for sys.
func (r *Results) Drops(id string, sys System) (dropped, lost uint64, failed int) {
	for _, run := range r.Runs {
		if run.Scenario == id && run.System == sys {
			dropped += run.Sample.Dropped
			lost += run.Sample.Lost
			if run.Err != "" {
				failed++
			}
		}
	}
	return
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
