package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sync/atomic"
	"time"
)

// The worker's line protocol. A worker prints Ready once it is connected
// and subscribed, waits for Go on its standard input (publishers), and
// prints Done with a JSON Report when it has finished. Stop, or the end
// of its standard input, makes it report what it has and exit.
const (
	lineReady = "READY"
	lineDone  = "DONE "
	lineErr   = "ERR "
	lineGo    = "GO"
	lineStop  = "STOP"
)

// Report is what a worker measured.
type Report struct {
	Recv    uint64 `json:"recv"`              // messages received
	Dropped uint64 `json:"dropped"`           // reported dropped for this worker
	First   int64  `json:"first"`             // Unix ns of the first message received (or sent, for a publisher)
	Last    int64  `json:"last"`              // Unix ns of the last one
	P50     int64  `json:"p50,omitempty"`     // round trip, ns (ping)
	P99     int64  `json:"p99,omitempty"`     // round trip, ns (ping)
	Stopped bool   `json:"stopped,omitempty"` // ended by Stop or its deadline before receiving everything
	Lost    string `json:"lost,omitempty"`    // the error that cost it its connection
}

// workerArgs are a worker's flags.
type workerArgs struct {
	sys        System
	role       string
	addr       string // socket dir (netcluster) or URL (NATS)
	n          int    // messages to send, or to expect
	size       int
	subject    string
	extra      int  // extra non-matching pattern subscriptions (S7)
	borrow     bool // netcluster: the agent WithBorrowedMessages (S1o, S3o)
	agents     int  // idle clients (S8)
	warmup     int  // untimed round trips before the timed ones (ping, requester)
	membersN   int  // queue group members in this process (responders, workers)
	inflight   int  // requests in flight at a time (requester)
	deadline   time.Duration
	cpuprofile string
	trace      string
}

// Worker runs one worker process: args are what follows "worker" on the
// command line. It returns the exit code.
func Worker(args []string, stdin io.Reader, stdout io.Writer) int {
	var w workerArgs
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.Func("sys", "netcluster or nats", func(s string) error {
		w.sys = System(s)
		if w.sys != Netcluster && w.sys != NATS {
			return fmt.Errorf("unknown system %q", s)
		}
		return nil
	})
	fs.StringVar(&w.role, "role", "", "pub, sub, ping, pong, idle, local, local2, responders, requester, workers, relay, rpub or rsub")
	fs.StringVar(&w.addr, "addr", "", "socket directory (netcluster) or server URL (nats)")
	fs.IntVar(&w.n, "n", 0, "messages to send or expect")
	fs.IntVar(&w.size, "size", 128, "message size, bytes")
	fs.StringVar(&w.subject, "subject", "bench", "event name / subject")
	fs.IntVar(&w.extra, "extra", 0, "extra non-matching pattern subscriptions")
	fs.BoolVar(&w.borrow, "borrow", false, "netcluster: connect WithBorrowedMessages (ignored for nats)")
	fs.IntVar(&w.agents, "agents", 0, "idle clients to connect")
	fs.IntVar(&w.warmup, "warmup", 0, "untimed round trips first")
	fs.IntVar(&w.membersN, "members", 1, "queue group members (responders, workers)")
	fs.IntVar(&w.inflight, "inflight", 1, "requests in flight at a time (requester)")
	fs.DurationVar(&w.deadline, "deadline", time.Minute, "give up after this long")
	fs.StringVar(&w.cpuprofile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&w.trace, "trace", "", "write an execution trace to `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := &lineWriter{w: stdout}
	if err := w.run(stdin, out); err != nil {
		out.printf("%s%v", lineErr, err)
		return 1
	}
	return 0
}

// lineWriter writes protocol lines.
type lineWriter struct{ w io.Writer }

func (l *lineWriter) printf(format string, args ...any) {
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lineWriter) done(r Report) {
	b, _ := json.Marshal(r)
	l.printf("%s%s", lineDone, b)
}

// control follows the worker's standard input: goCh closes at Go, stopCh
// at Stop or at the end of input.
type control struct {
	goCh, stopCh chan struct{}
}

func watchInput(stdin io.Reader) *control {
	c := &control{goCh: make(chan struct{}), stopCh: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdin)
		gone := false
		for sc.Scan() {
			switch sc.Text() {
			case lineGo:
				if !gone {
					close(c.goCh)
					gone = true
				}
			case lineStop:
				close(c.stopCh)
				return
			}
		}
		close(c.stopCh)
	}()
	return c
}

func (w *workerArgs) run(stdin io.Reader, out *lineWriter) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.deadline)
	defer cancel()
	if w.cpuprofile != "" {
		f, err := os.Create(w.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if w.trace != "" {
		stop, err := startTrace(w.trace)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctl := watchInput(stdin)
	switch w.role {
	case "pub":
		return w.pub(ctx, ctl, out)
	case "sub":
		return w.sub(ctx, ctl, out)
	case "ping":
		return w.ping(ctx, ctl, out)
	case "pong":
		return w.pong(ctx, ctl, out)
	case "idle":
		return w.idle(ctx, ctl, out)
	case "local", "local2":
		return w.local(ctx, ctl, out)
	case "responders":
		return w.responders(ctx, ctl, out)
	case "requester":
		return w.requester(ctx, ctl, out)
	case "workers":
		return w.workers(ctx, ctl, out)
	case "jspub":
		return w.jsPub(ctx, ctl, out)
	case "jssub":
		return w.jsSub(ctx, ctl, out)
	case "relay":
		return w.relayRole(ctx, ctl, out)
	case "rpub":
		return w.relayPub(ctx, ctl, out)
	case "rsub":
		return w.relaySub(ctx, ctl, out)
	}
	return fmt.Errorf("unknown role %q", w.role)
}

func (w *workerArgs) dial(ctx context.Context) (client, error) {
	if w.sys == Netcluster {
		return dialNC(ctx, w.addr, nil, w.borrow)
	}
	return dialNATS(w.addr, nil)
}

// waitGo waits for the Go line.
func waitGo(ctx context.Context, ctl *control) error {
	select {
	case <-ctl.goCh:
		return nil
	case <-ctl.stopCh:
		return errors.New("stopped before go")
	case <-ctx.Done():
		return fmt.Errorf("waiting for go: %w", ctx.Err())
	}
}

// pub sends n messages as fast as the client takes them, then syncs.
func (w *workerArgs) pub(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := w.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	data := make([]byte, w.size)
	start := time.Now()
	for i := range w.n {
		data[0] = byte(i)
		if err := c.Publish(ctx, w.subject, data); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	if err := c.Sync(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	out.done(Report{First: start.UnixNano(), Last: time.Now().UnixNano()})
	return nil
}

// counter counts the messages a handler receives and when.
type counter struct {
	recv        atomic.Uint64
	first, last atomic.Int64
}

func (k *counter) handle([]byte) {
	now := time.Now().UnixNano()
	if k.recv.Add(1) == 1 {
		k.first.Store(now)
	}
	k.last.Store(now)
}

// wait returns when recv+dropped reaches n, at Stop, or at ctx's end; it
// reports which.
func (k *counter) wait(ctx context.Context, ctl *control, c client, n int) (stopped bool) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if k.recv.Load()+c.Dropped() >= uint64(n) {
			return false
		}
		select {
		case <-t.C:
		case <-ctl.stopCh:
			return k.recv.Load()+c.Dropped() < uint64(n)
		case <-ctx.Done():
			return true
		}
	}
}

func (k *counter) report(c client, stopped bool) Report {
	r := Report{
		Recv: k.recv.Load(), Dropped: c.Dropped(),
		First: k.first.Load(), Last: k.last.Load(), Stopped: stopped,
	}
	if err := c.Lost(); err != nil {
		r.Lost = err.Error()
	}
	return r
}

// extraPattern is the i-th pattern subscription that never matches a
// bench message: a regex for netcluster, a wildcard subject for NATS.
func extraPattern(sys System, i int) string {
	if sys == Netcluster {
		return fmt.Sprintf(`ev\.%d\..*`, i)
	}
	return fmt.Sprintf("ev.%d.>", i)
}

// sub receives until it has n messages (received or reported dropped).
func (w *workerArgs) sub(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := w.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range w.extra {
		if err := c.Subscribe(extraPattern(w.sys, i), func([]byte) {}); err != nil {
			return err
		}
	}
	var k counter
	if err := c.Subscribe(w.subject, k.handle); err != nil {
		return err
	}
	if err := c.Sync(ctx); err != nil {
		return err
	}
	out.printf(lineReady)
	stopped := k.wait(ctx, ctl, c, w.n)
	out.done(k.report(c, stopped))
	return nil
}

// pong answers every "ping" with a "pong" carrying the same data.
func (w *workerArgs) pong(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := w.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var failed atomic.Value
	if err := c.Subscribe("ping", func(b []byte) {
		if err := c.Publish(ctx, "pong", b); err != nil {
			failed.CompareAndSwap(nil, err)
		}
	}); err != nil {
		return err
	}
	if err := c.Sync(ctx); err != nil {
		return err
	}
	out.printf(lineReady)
	select {
	case <-ctl.stopCh:
	case <-ctx.Done():
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	out.done(Report{})
	return nil
}

// ping sends a ping, waits for its pong, and so on: warmup untimed round
// trips, then n timed ones.
func (w *workerArgs) ping(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := w.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	got := make(chan struct{}, 1)
	if err := c.Subscribe("pong", func([]byte) { got <- struct{}{} }); err != nil {
		return err
	}
	if err := c.Sync(ctx); err != nil {
		return err
	}
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	data := make([]byte, w.size)
	rtt := make([]time.Duration, 0, w.n)
	start := time.Now()
	for i := range w.warmup + w.n {
		t0 := time.Now()
		if err := c.Publish(ctx, "ping", data); err != nil {
			return err
		}
		select {
		case <-got:
		case <-ctx.Done():
			return fmt.Errorf("round trip %d: no pong: %w", i, ctx.Err())
		}
		if i >= w.warmup {
			rtt = append(rtt, time.Since(t0))
		}
	}
	slices.Sort(rtt)
	out.done(Report{
		Recv: uint64(len(rtt)), First: start.UnixNano(), Last: time.Now().UnixNano(),
		P50: int64(percentile(rtt, 50)), P99: int64(percentile(rtt, 99)),
	})
	return nil
}

// percentile returns the p-th percentile of sorted d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	return d[min(max(i-1, 0), len(d)-1)]
}

// idle connects w.agents clients, each with one subscription, and keeps
// them until Stop.
func (w *workerArgs) idle(ctx context.Context, ctl *control, out *lineWriter) error {
	cs := make([]client, 0, w.agents)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for i := range w.agents {
		c, err := w.dial(ctx)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		cs = append(cs, c)
		if err := c.Subscribe(w.subject, func([]byte) {}); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if err := c.Sync(ctx); err != nil {
			return err
		}
	}
	out.printf(lineReady)
	select {
	case <-ctl.stopCh:
	case <-ctx.Done():
	}
	out.done(Report{Recv: uint64(len(cs))})
	return nil
}

// local runs S6 in this process, against a server embedded here: role
// "local" publishes and receives on one client (for netcluster, Emit to
// the agent's own listener, delivered in memory), role "local2" from one
// client to another through the embedded server.
func (w *workerArgs) local(ctx context.Context, ctl *control, out *lineWriter) error {
	p, err := startInProcess(ctx, w.sys)
	if err != nil {
		return err
	}
	defer p.close()
	sub, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub := sub
	if w.role == "local2" {
		if pub, err = p.dial(ctx); err != nil {
			return err
		}
		defer pub.Close()
	}
	var k counter
	if err := sub.Subscribe(w.subject, k.handle); err != nil {
		return err
	}
	if err := sub.Sync(ctx); err != nil {
		return err
	}
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	data := make([]byte, w.size)
	for i := range w.n {
		data[0] = byte(i)
		if err := pub.Publish(ctx, w.subject, data); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	if err := pub.Sync(ctx); err != nil {
		return err
	}
	stopped := k.wait(ctx, ctl, sub, w.n)
	out.done(k.report(sub, stopped))
	return nil
}

// startTrace writes an execution trace to path until stop is called.
func startTrace(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { trace.Stop(); f.Close() }, nil
}
