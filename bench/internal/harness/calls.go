package harness

// S11 and S12: request/reply through a queue group, and work shared by a
// queue group. netcluster: Agent.RequestRaw, OnQueue, Message.ReplyRaw;
// NATS: nats.go RequestWithContext, QueueSubscribe, Msg.Respond.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netcluster/netcluster"
)

// caller is what S11 and S12 need of a client beyond publishing.
type caller interface {
	client
	// Request sends data and returns the first reply.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
	// QueueSubscribe joins queue group group for subject; h gets each
	// message given to this member and answers a request with reply (nil
	// for a message that is not a request: making it costs an allocation
	// per message, with either client).
	QueueSubscribe(subject, group string, h func(data []byte, reply func([]byte) error)) error
}

var (
	_ caller = (*ncClient)(nil)
	_ caller = (*natsClient)(nil)
)

func (c *ncClient) Request(ctx context.Context, event string, data []byte) ([]byte, error) {
	m, err := c.a.RequestRaw(ctx, event, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (c *ncClient) QueueSubscribe(event, group string, h func([]byte, func([]byte) error)) error {
	_, err := c.a.OnQueue(event, group, func(m *netcluster.Message) {
		if !m.IsRequest() {
			h(m.Data, nil)
			return
		}
		h(m.Data, func(b []byte) error { return m.ReplyRaw(context.Background(), b) })
	})
	return err
}

func (c *natsClient) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (c *natsClient) QueueSubscribe(subject, group string, h func([]byte, func([]byte) error)) error {
	s, err := c.nc.QueueSubscribe(subject, group, func(m *nats.Msg) {
		if m.Reply == "" {
			h(m.Data, nil)
			return
		}
		h(m.Data, m.Respond)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return nil
}

// dialCaller dials a client that can make requests and join queue groups.
func (w *workerArgs) dialCaller(ctx context.Context) (caller, error) {
	c, err := w.dial(ctx)
	if err != nil {
		return nil, err
	}
	return c.(caller), nil
}

// responders runs w.membersN clients in a queue group for "req", each
// answering every request with its data, until Stop.
func (w *workerArgs) responders(ctx context.Context, ctl *control, out *lineWriter) error {
	var failed atomic.Value
	cs, err := w.members(ctx, "req", "responders", func(b []byte, reply func([]byte) error) {
		if err := reply(b); err != nil {
			failed.CompareAndSwap(nil, err)
		}
	})
	defer closeAll(cs)
	if err != nil {
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

// workers runs w.membersN clients in a queue group for w.subject, counting
// what they get together, until they have w.n messages (S12).
func (w *workerArgs) workers(ctx context.Context, ctl *control, out *lineWriter) error {
	var k counter
	cs, err := w.members(ctx, w.subject, "workers", func(b []byte, _ func([]byte) error) { k.handle(b) })
	defer closeAll(cs)
	if err != nil {
		return err
	}
	out.printf(lineReady)
	var dropped uint64
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	stopped := false
wait:
	for {
		dropped = 0
		for _, c := range cs {
			dropped += c.Dropped()
		}
		if k.recv.Load()+dropped >= uint64(w.n) {
			break
		}
		select {
		case <-t.C:
		case <-ctl.stopCh:
			stopped = true
			break wait
		case <-ctx.Done():
			stopped = true
			break wait
		}
	}
	r := Report{Recv: k.recv.Load(), Dropped: dropped, First: k.first.Load(), Last: k.last.Load(), Stopped: stopped}
	for _, c := range cs {
		if err := c.Lost(); err != nil {
			r.Lost = err.Error()
		}
	}
	out.done(r)
	return nil
}

// members connects w.membersN clients, each a member of group for
// subject with handler h, and syncs them.
func (w *workerArgs) members(ctx context.Context, subject, group string, h func([]byte, func([]byte) error)) ([]caller, error) {
	var cs []caller
	for i := range max(w.membersN, 1) {
		c, err := w.dialCaller(ctx)
		if err != nil {
			return cs, fmt.Errorf("member %d: %w", i, err)
		}
		cs = append(cs, c)
		if err := c.QueueSubscribe(subject, group, h); err != nil {
			return cs, err
		}
	}
	for _, c := range cs {
		if err := c.Sync(ctx); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

func closeAll(cs []caller) {
	for _, c := range cs {
		c.Close()
	}
}

// requester makes w.warmup untimed requests, then w.n timed ones, with
// w.inflight of them in flight at a time (1: one after the other), and
// reports the round-trip percentiles and the time the timed ones took.
func (w *workerArgs) requester(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := w.dialCaller(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	data := make([]byte, w.size)
	for i := range w.warmup {
		if _, err := c.Request(ctx, "req", data); err != nil {
			return fmt.Errorf("warm-up request %d: %w", i, err)
		}
	}
	inflight := max(w.inflight, 1)
	rtts := make([][]time.Duration, inflight)
	errs := make([]error, inflight)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := range inflight {
		wg.Go(func() {
			buf := make([]byte, w.size)
			for {
				i := next.Add(1) - 1
				if i >= int64(w.n) {
					return
				}
				buf[0] = byte(i)
				t0 := time.Now()
				got, err := c.Request(ctx, "req", buf)
				if err != nil {
					errs[g] = fmt.Errorf("request %d: %w", i, err)
					return
				}
				if len(got) != len(buf) || got[0] != buf[0] {
					errs[g] = fmt.Errorf("request %d: a reply of %d bytes, not its own", i, len(got))
					return
				}
				rtts[g] = append(rtts[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	end := time.Now()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	all := slices.Concat(rtts...)
	slices.Sort(all)
	out.done(Report{
		Recv: uint64(len(all)), First: start.UnixNano(), Last: end.UnixNano(),
		P50: int64(percentile(all, 50)), P99: int64(percentile(all, 99)),
	})
	return nil
}

// requests runs S11: a requester and a queue group of two responders in
// another process; inflight requests at a time.
func (h *Harness) requests(ctx context.Context, sys System, tag string, n, warmup, inflight int) (Report, error) {
	srv, err := h.startServer(ctx, sys, tag)
	if err != nil {
		return Report{}, err
	}
	defer srv.stop()
	var g group
	defer func() { g.stop() }()
	resp, err := h.worker(ctx, sys, tag, "responders", 0, "-addr", srv.addr, "-members", "2")
	if err != nil {
		return Report{}, err
	}
	g = append(g, resp)
	req, err := h.worker(ctx, sys, tag, "requester", 0, "-addr", srv.addr,
		"-n", fmt.Sprint(n), "-warmup", fmt.Sprint(warmup), "-size", fmt.Sprint(smallMsg), "-inflight", fmt.Sprint(inflight))
	if err != nil {
		return Report{}, err
	}
	g = append(g, req)
	if err := g.ready(ctx); err != nil {
		return Report{}, err
	}
	req.send(lineGo)
	return req.report(ctx)
}

// work runs S12: a publisher, and a queue group of four workers in
// another process that share its messages.
func (h *Harness) work(ctx context.Context, sys System, tag string, n int) (Sample, error) {
	srv, err := h.startServer(ctx, sys, tag)
	if err != nil {
		return Sample{}, err
	}
	defer srv.stop()
	var g group
	defer func() { g.stop() }()
	wk, err := h.worker(ctx, sys, tag, "workers", 0, "-addr", srv.addr, "-members", "4", "-n", fmt.Sprint(n))
	if err != nil {
		return Sample{}, err
	}
	g = append(g, wk)
	pub, err := h.worker(ctx, sys, tag, "pub", 0, "-addr", srv.addr, "-n", fmt.Sprint(n), "-size", fmt.Sprint(smallMsg))
	if err != nil {
		return Sample{}, err
	}
	g = append(g, pub)
	if err := g.ready(ctx); err != nil {
		return Sample{}, err
	}
	pub.send(lineGo)
	if _, err := pub.report(ctx); err != nil {
		return Sample{}, err
	}
	r, err := collect(ctx, wk, subGrace)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Dropped: r.Dropped, Note: r.Lost}
	if r.Recv+r.Dropped < uint64(n) {
		s.Lost = uint64(n) - r.Recv - r.Dropped
	}
	if r.Recv < 2 || r.Last <= r.First {
		return s, fmt.Errorf("%s: the workers received %d messages", tag, r.Recv)
	}
	s.Values = []float64{float64(r.Recv-1) / (float64(r.Last-r.First) / 1e9)}
	return s, nil
}
