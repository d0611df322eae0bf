package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// S9 and S10: host to host through one NATS server. Netcluster runs two
// ncservers joined by their NATS backbone, a publisher agent on the first
// and a listener on the second; NATS runs a nats.go publisher and
// subscriber (S9) or a JetStream publisher and consumer (S10) on the same
// nats-server.

// Counts of S9 and S10 at scale 1.
const (
	countS9  = 300_000
	countS10 = 50_000

	// jsWindow is how many JetStream publications the NATS publisher
	// keeps unacknowledged (PublishAsync).
	jsWindow = 256
	// benchStream is the NATS side's stream in S10.
	benchStream = "BENCH"
)

func backboneScenarios(n func(int) int) []*Scenario {
	return []*Scenario{
		{
			ID: "S9", Title: "host → host through one nats-server, 128 B", Process: "nats-server, 2 ncservers on its backbone, publisher on host 1, listener on host 2 (5 processes); NATS: nats.go publisher → subscriber on the same nats-server",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s", Target: Target{RatioAtLeast, 1.0}}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.hostToHost(ctx, sys, tag, false, n(countS9))
			},
		},
		{
			ID: "S10", Title: "S9 on a durable channel, 128 B", Process: "as S9, the channel durable (JetStream, file storage, R1); NATS: JetStream PublishAsync (256 in flight) → durable pull consumer, acked",
			Metrics: []Metric{{Name: "throughput", Unit: "msgs/s"}},
			run: func(ctx context.Context, h *Harness, sys System, tag string) (Sample, error) {
				return h.hostToHost(ctx, sys, tag, true, n(countS10))
			},
		},
	}
}

// hostToHost runs S9 (durable false) or S10.
func (h *Harness) hostToHost(ctx context.Context, sys System, tag string, durable bool, count int) (Sample, error) {
	natsd, err := h.self(ctx, "natsd", "natsd", "-js", filepath.Join(h.tmp, tag+"-js"))
	if err != nil {
		return Sample{}, err
	}
	defer natsd.stop(false, 5*time.Second)
	url, err := natsd.expect(ctx, lineReady+" ")
	if err != nil {
		return Sample{}, err
	}
	pubAddr, subAddr := url, url
	pubRole, subRole := "pub", "sub"
	if sys == NATS && durable {
		pubRole, subRole = "jspub", "jssub"
	}
	if sys == Netcluster {
		for i, addr := range []*string{&pubAddr, &subAddr} {
			srv, err := h.startBackboneServer(ctx, tag, i, url, durable)
			if err != nil {
				return Sample{}, err
			}
			defer srv.stop()
			*addr = srv.addr
		}
	}
	var subs, pubs group
	defer func() { pubs.stop(); subs.stop() }()
	sub, err := h.worker(ctx, sys, tag, subRole, 0, "-addr", subAddr, "-n", fmt.Sprint(count), "-size", fmt.Sprint(smallMsg))
	if err != nil {
		return Sample{}, err
	}
	subs = append(subs, sub)
	pub, err := h.worker(ctx, sys, tag, pubRole, 0, "-addr", pubAddr, "-n", fmt.Sprint(count), "-size", fmt.Sprint(smallMsg))
	if err != nil {
		return Sample{}, err
	}
	pubs = append(pubs, pub)
	if err := subs.ready(ctx); err != nil {
		return Sample{}, err
	}
	if err := pubs.ready(ctx); err != nil {
		return Sample{}, err
	}
	if sys == Netcluster {
		// The listener's subscription travels from host 2's server to NATS.
		time.Sleep(500 * time.Millisecond)
	}
	pub.send(lineGo)
	if _, err := pub.report(ctx); err != nil {
		return Sample{}, err
	}
	r, err := collect(ctx, sub, subGrace)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Dropped: r.Dropped, Note: r.Lost}
	if r.Recv+r.Dropped < uint64(count) {
		s.Lost = uint64(count) - r.Recv - r.Dropped
	}
	if r.Recv < 2 || r.Last <= r.First {
		return s, fmt.Errorf("%s: the listener received %d messages", tag, r.Recv)
	}
	s.Values = []float64{float64(r.Recv-1) / (float64(r.Last-r.First) / 1e9)}
	return s, nil
}

// startBackboneServer starts ncserver number i on the NATS server at url,
// with the bench channel on the network (durable if asked).
func (h *Harness) startBackboneServer(ctx context.Context, tag string, i int, url string, durable bool) (*busServer, error) {
	dir, err := os.MkdirTemp(h.tmp, "b")
	if err != nil {
		return nil, err
	}
	dur := ""
	if durable {
		dur = `, "durable": {"maxage": "1h", "maxbytes": "1GiB"}`
	}
	cfg := filepath.Join(dir, "ncserver.jsonc")
	src := fmt.Sprintf(`{
  "socketdir": %q,
  "startcontrol": false,
  "connecttonet": true,
  "nodename": "%s-host%d",
  "nats": {"urls": [%q]},
  "channels": {"control": {}, %q: {"propagatetonet": true%s}},
}
`, dir, tag, i+1, url, Channel, dur)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-ncserver%d", tag, i+1)
	var p *proc
	if h.opts.ProfileDir != "" {
		p, err = h.self(ctx, name, "ncserve", "-config", cfg, "-cpuprofile", filepath.Join(h.opts.ProfileDir, name+".cpu.pprof"))
	} else {
		p, err = startProc(ctx, name, h.ncserver, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := waitSocket(ctx, filepath.Join(dir, "netcluster-"+Channel)); err != nil {
		p.stop(true, 5*time.Second)
		return nil, err
	}
	return &busServer{addr: dir, pid: p.pid(), stop: func() {
		p.stop(true, 10*time.Second)
		os.RemoveAll(dir)
	}}, nil
}

// jsStream creates (or finds) the NATS side's stream of S10.
func jsStream(ctx context.Context, nc *nats.Conn, subject string) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: benchStream, Subjects: []string{subject}, Storage: jetstream.FileStorage, Replicas: 1,
		MaxAge: time.Hour, MaxBytes: 1 << 30,
	})
	return js, err
}

// jsPub publishes n messages to JetStream, jsWindow unacknowledged at a
// time, and waits for every acknowledgement.
func (w *workerArgs) jsPub(ctx context.Context, ctl *control, out *lineWriter) error {
	nc, err := nats.Connect(w.addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jsStream(ctx, nc, w.subject)
	if err != nil {
		return err
	}
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	data := make([]byte, w.size)
	start := time.Now()
	var pending []jetstream.PubAckFuture
	for i := range w.n {
		data[0] = byte(i)
		f, err := js.PublishAsync(w.subject, data)
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		pending = append(pending, f)
		if len(pending) == jsWindow {
			if err := waitAcks(ctx, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
	}
	if err := waitAcks(ctx, pending); err != nil {
		return err
	}
	out.done(Report{First: start.UnixNano(), Last: time.Now().UnixNano()})
	return nil
}

func waitAcks(ctx context.Context, fs []jetstream.PubAckFuture) error {
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// jsSub consumes n messages with a durable pull consumer, acknowledging
// each.
func (w *workerArgs) jsSub(ctx context.Context, ctl *control, out *lineWriter) error {
	nc, err := nats.Connect(w.addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jsStream(ctx, nc, w.subject)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, benchStream, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		return err
	}
	var k counter
	var acked atomic.Uint64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		k.handle(m.Data())
		if m.Ack() == nil {
			acked.Add(1)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return err
	}
	defer cc.Stop()
	out.printf(lineReady)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	stopped := false
	for k.recv.Load() < uint64(w.n) && !stopped {
		select {
		case <-t.C:
		case <-ctl.stopCh:
			stopped = true
		case <-ctx.Done():
			stopped = true
		}
	}
	if k.recv.Load() == 0 {
		return errors.New("no message consumed")
	}
	out.done(Report{Recv: k.recv.Load(), First: k.first.Load(), Last: k.last.Load(), Stopped: stopped})
	return nil
}
