package harness

import (
	"context"
	"fmt"
	"time"
)

// Scenario is one comparison: run measures one system once.
type Scenario struct {
	ID      string
	Title   string
	Process string // how it runs, for the method notes
	Metrics []Metric
	// Ceiling marks a scenario that measures no message system (S0): it
	// runs once per round, as system Relay, and has no NATS column.
	Ceiling bool
	run     func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error)
}

// Metric is one figure a scenario measures.
type Metric struct {
	Name  string
	Unit  string
	Lower bool // lower is better
	// Target, if any, is what netcluster must reach.
	Target Target
}

// TargetKind says what a target compares.
type TargetKind int

// Kinds of target.
const (
	NoTarget       TargetKind = iota
	RatioAtLeast              // ours/NATS ≥ Value
	RatioAtMost               // ours/NATS ≤ Value
	OfOurS1AtLeast            // ours ≥ Value × our own S1
	AtMost                    // ours ≤ Value, in the metric's unit
)

// Target is a goal for netcluster's figure.
type Target struct {
	Kind  TargetKind
	Value float64
}

func (t Target) String() string {
	switch t.Kind {
	case RatioAtLeast:
		return fmt.Sprintf("≥ %.1f×", t.Value)
	case RatioAtMost:
		return fmt.Sprintf("≤ %.1f×", t.Value)
	case OfOurS1AtLeast:
		return fmt.Sprintf("≥ %.1f× our S1", t.Value)
	case AtMost:
		return fmt.Sprintf("≤ %g", t.Value)
	}
	return ""
}

// Sample is what one run of a scenario measured.
type Sample struct {
	Values  []float64 // one per metric
	Dropped uint64    // messages the system reported dropped for slow consumers
	Lost    uint64    // messages neither received nor reported dropped
	Note    string
}

// Counts are the fixed message counts of the scenarios at scale 1.
var Counts = struct {
	S0, S1, S2, S3, S4, S5, S5Warmup, S6, S7, S8 int
	S11, S11Warmup, S11b, S12                    int
}{
	S0:       5_000_000,
	S1:       1_000_000,
	S2:       250_000, // published; each of the 4 subscribers receives them all
	S3:       250_000, // per publisher
	S4:       20_000,
	S5:       10_000,
	S5Warmup: 1_000,
	S6:       1_000_000,
	S7:       1_000_000,
	S8:       1_000, // agents; scaled down only (at least 10)

	S11:       10_000,
	S11Warmup: 1_000,
	S11b:      200_000,
	S12:       1_000_000,
}

// s11InFlight is how many requests S11b keeps in flight.
const s11InFlight = 64

const (
	smallMsg     = 128
	bigMsg       = 16 << 10
	s7Extra      = 100
	s8SettleTime = time.Second
)

// Scenarios returns the scenarios, their counts multiplied by scale.
func Scenarios(scale float64) []*Scenario {
	n := func(c int) int { return max(1, int(float64(c)*scale)) }
	scenarios := []*Scenario{
		{
			ID: "S0", Title: "bare relay ceiling, 1 → 1, 128 B", Process: "publisher → relay that walks frame headers and forwards whole 64 KiB reads → subscriber that parses and counts; 3 processes, Unix sockets",
			Ceiling: true,
			Metrics: []Metric{
				{Name: "throughput", Unit: "msgs/s"},
				{Name: "relay CPU", Unit: "ns/msg", Lower: true},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.relay(ctx, tag, n(Counts.S0), smallMsg)
			},
		},
		{
			ID: "S1", Title: "1 pub → 1 sub, 128 B", Process: "server, publisher and subscriber in 3 processes",
			Metrics: []Metric{
				{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 3.0}},
				{Name: "server CPU (N3)", Unit: "ns/msg", Lower: true},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 1, subs: 1, n: n(Counts.S1), size: smallMsg, cpu: true})
			},
		},
		{
			ID: "S2", Title: "1 pub → 4 subs (fan-out), 128 B", Process: "6 processes; rate = all deliveries",
			Metrics: []Metric{{Name: "deliveries", Unit: "msgs/s", Target: Target{RatioAtLeast, 2.0}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 1, subs: 4, n: n(Counts.S2), size: smallMsg})
			},
		},
		{
			ID: "S3", Title: "4 pubs → 1 sub, 128 B", Process: "6 processes",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 2.0}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 4, subs: 1, n: n(Counts.S3), size: smallMsg})
			},
		},
		// S1o and S3o are reported only, without targets (those stay on
		// S1 and S3): netcluster's subscriber opts in to
		// WithBorrowedMessages (a handler's message is valid until it
		// returns; the agent reuses its memory), which NATS has no
		// counterpart of; NATS runs as in S1 and S3.
		{
			ID: "S1o", Title: "S1, netcluster's subscriber WithBorrowedMessages (opt-in); NATS defaults", Process: "as S1",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s"}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 1, subs: 1, n: n(Counts.S1), size: smallMsg, borrow: true})
			},
		},
		{
			ID: "S3o", Title: "S3, netcluster's subscriber WithBorrowedMessages (opt-in); NATS defaults", Process: "as S3",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s"}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 4, subs: 1, n: n(Counts.S3), size: smallMsg, borrow: true})
			},
		},
		{
			ID: "S4", Title: "1 pub → 1 sub, 16 KiB", Process: "3 processes",
			Metrics: []Metric{{Name: "throughput", Unit: "MB/s", Target: Target{RatioAtLeast, 1.5}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 1, subs: 1, n: n(Counts.S4), size: bigMsg, mb: true})
			},
		},
		{
			ID: "S5", Title: "round trip (ping-pong), 128 B", Process: "3 processes, one message in flight",
			Metrics: []Metric{
				{Name: "p50", Unit: "µs", Lower: true, Target: Target{RatioAtMost, 0.5}},
				{Name: "p99", Unit: "µs", Lower: true, Target: Target{RatioAtMost, 0.7}},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.latency(ctx, sys, tag, n(Counts.S5), n(Counts.S5Warmup))
			},
		},
		{
			ID: "S6", Title: "in-process emit → own listener, 128 B", Process: "1 process, embedded server; NATS: one in-process connection publishing to its own subscription",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 4.0}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.local(ctx, sys, tag, "local", n(Counts.S6))
			},
		},
		{
			ID: "S6b", Title: "in-process agent → other agent, 128 B", Process: "1 process, embedded server, 2 in-memory connections (NATS: 2 in-process connections)",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 3.0}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.local(ctx, sys, tag, "local2", n(Counts.S6))
			},
		},
		{
			ID: "S7", Title: "S1 + 100 regex listeners on the subscriber", Process: "3 processes; the subscriber also listens to 100 patterns that never match",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{OfOurS1AtLeast, 0.5}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.throughput(ctx, sys, tag, flow{pubs: 1, subs: 1, n: n(Counts.S7), size: smallMsg, extra: s7Extra})
			},
		},
		{
			ID: "S8", Title: "1,000 idle agents: server RSS", Process: "server and one process holding 1,000 clients, one subscription each",
			Metrics: []Metric{
				{Name: "server RSS", Unit: "MiB", Lower: true, Target: Target{AtMost, 16}}, // issue 14 (issue 10 asked 40)
				{Name: "per agent", Unit: "KiB", Lower: true},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.idleRSS(ctx, sys, tag, max(10, min(Counts.S8, n(Counts.S8))))
			},
		},
		{
			ID: "S11", Title: "request/reply, 1 requester → queue group of 2, 128 B, sequential", Process: "3 processes: server, requester, the 2 responders (one process, 2 connections); NATS: Request + QueueSubscribe",
			Metrics: []Metric{
				{Name: "p50", Unit: "µs", Lower: true, Target: Target{RatioAtMost, 0.7}},
				{Name: "p99", Unit: "µs", Lower: true},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				r, err := h.requests(ctx, sys, tag, n(Counts.S11), n(Counts.S11Warmup), 1)
				if err != nil {
					return Sample{}, err
				}
				return Sample{Values: []float64{float64(r.P50) / 1e3, float64(r.P99) / 1e3}}, nil
			},
		},
		{
			ID: "S11b", Title: "request/reply, 64 in flight, 128 B", Process: "as S11, 64 requests in flight",
			Metrics: []Metric{
				{Name: "throughput", Unit: "req/s", Target: Target{RatioAtLeast, 1.5}},
				{Name: "p99", Unit: "µs", Lower: true},
			},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				r, err := h.requests(ctx, sys, tag, n(Counts.S11b), n(Counts.S11Warmup), s11InFlight)
				if err != nil {
					return Sample{}, err
				}
				if r.Last <= r.First {
					return Sample{}, fmt.Errorf("%s: no time measured", tag)
				}
				return Sample{Values: []float64{float64(r.Recv) / (float64(r.Last-r.First) / 1e9), float64(r.P99) / 1e3}}, nil
			},
		},
		{
			ID: "S12", Title: "work distribution: 1 pub → queue group of 4, 128 B", Process: "3 processes: server, publisher, the 4 workers (one process, 4 connections); NATS: QueueSubscribe",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 1.5}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.work(ctx, sys, tag, n(Counts.S12))
			},
		},
	}
	return append(scenarios, backboneScenarios(n)...)
}

// flow is a throughput scenario.
type flow struct {
	pubs, subs int
	n          int // per publisher
	size       int
	extra      int  // non-matching pattern subscriptions per subscriber
	mb         bool // report MB/s instead of msgs/s
	cpu        bool // also report the server's CPU time per message published (routed)
	borrow     bool // netcluster's subscribers WithBorrowedMessages (S1o, S3o)
}

// worker starts a worker process.
func (h *Harness) worker(ctx context.Context, sys System, tag, role string, i int, args ...string) (*proc, error) {
	name := fmt.Sprintf("%s-%s%d", tag, role, i)
	a := []string{"worker", "-sys", string(sys), "-role", role}
	if d, ok := ctx.Deadline(); ok {
		a = append(a, "-deadline", time.Until(d).Round(time.Millisecond).String())
	}
	if h.opts.ProfileDir != "" {
		a = append(a, "-cpuprofile", fmt.Sprintf("%s/%s.cpu.pprof", h.opts.ProfileDir, name))
		if h.opts.Trace {
			a = append(a, "-trace", fmt.Sprintf("%s/%s.trace", h.opts.ProfileDir, name))
		}
	}
	return h.self(ctx, name, append(a, args...)...)
}

// group is the workers of one run.
type group []*proc

func (g group) stop() {
	for _, p := range g {
		p.stop(false, 5*time.Second)
	}
}

func (g group) ready(ctx context.Context) error {
	for _, p := range g {
		if _, err := p.expect(ctx, lineReady); err != nil {
			return err
		}
	}
	return nil
}

// collect waits for p's report; after grace it tells p to stop and waits
// a little more.
func collect(ctx context.Context, p *proc, grace time.Duration) (Report, error) {
	gctx, cancel := context.WithTimeout(ctx, grace)
	r, err := p.report(gctx)
	cancel()
	if err != nil && ctx.Err() == nil && gctx.Err() != nil {
		p.send(lineStop)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.report(sctx)
	}
	return r, err
}

// subGrace is how long subscribers may take, after the publishers have
// finished, to receive what is still on its way.
const subGrace = 5 * time.Second

func (h *Harness) throughput(ctx context.Context, sys System, tag string, f flow) (Sample, error) {
	srv, err := h.startServer(ctx, sys, tag)
	if err != nil {
		return Sample{}, err
	}
	defer srv.stop()
	var subs, pubs group
	defer func() { pubs.stop(); subs.stop() }()
	for i := range f.subs {
		p, err := h.worker(ctx, sys, tag, "sub", i, "-addr", srv.addr,
			"-n", fmt.Sprint(f.pubs*f.n), "-size", fmt.Sprint(f.size), "-extra", fmt.Sprint(f.extra),
			fmt.Sprintf("-borrow=%v", f.borrow))
		if err != nil {
			return Sample{}, err
		}
		subs = append(subs, p)
	}
	for i := range f.pubs {
		p, err := h.worker(ctx, sys, tag, "pub", i, "-addr", srv.addr,
			"-n", fmt.Sprint(f.n), "-size", fmt.Sprint(f.size))
		if err != nil {
			return Sample{}, err
		}
		pubs = append(pubs, p)
	}
	if err := subs.ready(ctx); err != nil {
		return Sample{}, err
	}
	if err := pubs.ready(ctx); err != nil {
		return Sample{}, err
	}
	var cpu0 int64
	if f.cpu && srv.pid != 0 {
		if cpu0, err = cpuTime(srv.pid); err != nil {
			return Sample{}, err
		}
	}
	for _, p := range pubs {
		p.send(lineGo)
	}
	for _, p := range pubs {
		if _, err := p.report(ctx); err != nil {
			return Sample{}, err
		}
	}
	var s Sample
	var recv uint64
	var first, last int64
	for _, p := range subs {
		r, err := collect(ctx, p, subGrace)
		if err != nil {
			return Sample{}, err
		}
		want := uint64(f.pubs * f.n)
		recv += r.Recv
		s.Dropped += r.Dropped
		if r.Recv+r.Dropped < want {
			s.Lost += want - r.Recv - r.Dropped
		}
		if r.Lost != "" {
			s.Note = r.Lost
		}
		if r.Recv > 0 {
			if first == 0 || r.First < first {
				first = r.First
			}
			last = max(last, r.Last)
		}
	}
	if recv < 2 || last <= first {
		return s, fmt.Errorf("%s: subscribers received %d messages", tag, recv)
	}
	v := float64(recv-1) / (float64(last-first) / 1e9)
	if f.mb {
		v = v * float64(f.size) / 1e6
	}
	s.Values = []float64{v}
	if f.cpu && srv.pid != 0 {
		cpu1, err := cpuTime(srv.pid)
		if err != nil {
			return s, err
		}
		// Per message routed: every published message is read, checked
		// and routed, whether delivered or dropped.
		s.Values = append(s.Values, float64(cpu1-cpu0)/float64(f.pubs*f.n))
	}
	return s, nil
}

func (h *Harness) latency(ctx context.Context, sys System, tag string, n, warmup int) (Sample, error) {
	srv, err := h.startServer(ctx, sys, tag)
	if err != nil {
		return Sample{}, err
	}
	defer srv.stop()
	var g group
	defer func() { g.stop() }()
	pong, err := h.worker(ctx, sys, tag, "pong", 0, "-addr", srv.addr)
	if err != nil {
		return Sample{}, err
	}
	g = append(g, pong)
	ping, err := h.worker(ctx, sys, tag, "ping", 0, "-addr", srv.addr,
		"-n", fmt.Sprint(n), "-warmup", fmt.Sprint(warmup), "-size", fmt.Sprint(smallMsg))
	if err != nil {
		return Sample{}, err
	}
	g = append(g, ping)
	if err := g.ready(ctx); err != nil {
		return Sample{}, err
	}
	ping.send(lineGo)
	r, err := ping.report(ctx)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Values: []float64{float64(r.P50) / 1e3, float64(r.P99) / 1e3}}, nil
}

func (h *Harness) local(ctx context.Context, sys System, tag, role string, n int) (Sample, error) {
	p, err := h.worker(ctx, sys, tag, role, 0, "-n", fmt.Sprint(n), "-size", fmt.Sprint(smallMsg))
	if err != nil {
		return Sample{}, err
	}
	defer p.stop(false, 5*time.Second)
	if _, err := p.expect(ctx, lineReady); err != nil {
		return Sample{}, err
	}
	p.send(lineGo)
	r, err := p.report(ctx)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Dropped: r.Dropped, Note: r.Lost}
	if r.Recv+r.Dropped < uint64(n) {
		s.Lost = uint64(n) - r.Recv - r.Dropped
	}
	if r.Recv < 2 || r.Last <= r.First {
		return s, fmt.Errorf("%s: received %d messages", tag, r.Recv)
	}
	s.Values = []float64{float64(r.Recv-1) / (float64(r.Last-r.First) / 1e9)}
	return s, nil
}

func (h *Harness) idleRSS(ctx context.Context, sys System, tag string, agents int) (Sample, error) {
	srv, err := h.startServer(ctx, sys, tag)
	if err != nil {
		return Sample{}, err
	}
	defer srv.stop()
	if srv.pid == 0 {
		return Sample{Note: "NATS server runs inside ncbench (-natsd inline): not measured"}, nil
	}
	base, err := rssBytes(srv.pid)
	if err != nil {
		return Sample{}, err
	}
	p, err := h.worker(ctx, sys, tag, "idle", 0, "-addr", srv.addr, "-agents", fmt.Sprint(agents))
	if err != nil {
		return Sample{}, err
	}
	defer p.stop(false, 10*time.Second)
	if _, err := p.expect(ctx, lineReady); err != nil {
		return Sample{}, err
	}
	select {
	case <-time.After(s8SettleTime):
	case <-ctx.Done():
		return Sample{}, ctx.Err()
	}
	rss, err := rssBytes(srv.pid)
	if err != nil {
		return Sample{}, err
	}
	return Sample{
		Values: []float64{float64(rss) / (1 << 20), float64(rss-base) / 1024 / float64(agents)},
		Note:   fmt.Sprintf("idle server %.1f MiB", float64(base)/(1<<20)),
	}, nil
}
