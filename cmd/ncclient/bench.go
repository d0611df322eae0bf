package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/netcluster/netcluster"
)

// benchDefaultCount is bench's message count without -n.
const benchDefaultCount = 100_000

// benchResult is what bench measured; -json prints it.
type benchResult struct {
	Channel     string        `json:"channel"`
	Publishers  int           `json:"publishers"`
	Subscribers int           `json:"subscribers"`
	Size        int           `json:"size"`
	Count       int           `json:"count"`
	PubTime     time.Duration `json:"pub_ns"`
	PubRate     float64       `json:"pub_msgs_per_s"`
	PubMB       float64       `json:"pub_mb_per_s"`
	Received    int           `json:"received"` // by all subscribers; Count × Subscribers when nothing was lost
	SubTime     time.Duration `json:"sub_ns"`   // from the first send to the last receipt
	SubRate     float64       `json:"sub_msgs_per_s"`
	SubMB       float64       `json:"sub_mb_per_s"`
	Latency     []latency     `json:"latency"` // send to receipt, over every message received
}

type latency struct {
	Percentile float64       `json:"p"`
	Value      time.Duration `json:"ns"`
}

// bench is a load generator, like nats bench: -pub publishers send -n
// messages of -size bytes on CHANNEL, in all, and -sub subscribers each
// receive them all. Each message carries its send time, so subscribers
// measure the latency.
func bench(ctx context.Context, c *client, args []string) error {
	channel := args[0]
	count := c.o.count
	if count == 0 {
		count = benchDefaultCount
	}
	var id [4]byte
	rand.Read(id[:])
	event := "ncclient.bench." + hex.EncodeToString(id[:])
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()

	var (
		received atomic.Int64
		lastAt   atomic.Int64 // unix ns of the latest receipt
		allIn    = make(chan struct{})
		subs     []*netcluster.Agent
		lats     = make([][]time.Duration, c.o.subs)
	)
	closeAll := func(as []*netcluster.Agent) {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		for _, a := range as {
			a.Close(ctx)
		}
	}
	defer func() { closeAll(subs) }()
	want := int64(count * c.o.subs)
	for i := range c.o.subs {
		a, err := netcluster.Connect(cctx, channel, c.agentOptions(netcluster.WithoutReconnect())...)
		if err != nil {
			return fmt.Errorf("bench: subscriber %d: %w", i+1, err)
		}
		subs = append(subs, a)
		lats[i] = make([]time.Duration, 0, count)
		_, err = a.On(event, func(m *netcluster.Message) {
			now := time.Now().UnixNano()
			if len(m.Data) >= 8 {
				lats[i] = append(lats[i], time.Duration(now-int64(binary.BigEndian.Uint64(m.Data))))
			}
			lastAt.Store(now)
			if received.Add(1) == want {
				close(allIn)
			}
		})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := a.Flush(cctx); err != nil {
			return fmt.Errorf("bench: subscriber %d: %w", i+1, err)
		}
	}
	var pubs []*netcluster.Agent
	defer func() { closeAll(pubs) }()
	for i := range c.o.pubs {
		a, err := netcluster.Connect(cctx, channel, c.agentOptions(netcluster.WithoutReconnect())...)
		if err != nil {
			return fmt.Errorf("bench: publisher %d: %w", i+1, err)
		}
		pubs = append(pubs, a)
	}

	var sent atomic.Int64
	stopBar := progressBar(c.errw, int64(count), &sent, &received, want)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(pubs))
	for i, a := range pubs {
		n := count / len(pubs)
		if i == 0 {
			n += count % len(pubs)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, c.o.size)
			for range n {
				binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
				if err := a.EmitRaw(ctx, event, buf); err != nil {
					errs[i] = err
					return
				}
				sent.Add(1)
			}
			errs[i] = a.Flush(ctx)
		}()
	}
	wg.Wait()
	pubTime := time.Since(start)
	for i, err := range errs {
		if err != nil {
			stopBar()
			return fmt.Errorf("bench: publisher %d: %w", i+1, err)
		}
	}
	if want > 0 {
		select {
		case <-allIn:
		case <-time.After(c.o.timeout): // what is still missing is lost
		case <-ctx.Done():
		}
	}
	stopBar()
	closeAll(subs) // no handler runs after this
	subs = nil
	r := benchResult{Channel: channel, Publishers: len(pubs), Subscribers: c.o.subs, Size: c.o.size, Count: count,
		PubTime: pubTime, Received: int(received.Load())}
	mb := float64(c.o.size) / 1e6
	r.PubRate = float64(count) / pubTime.Seconds()
	r.PubMB = r.PubRate * mb
	if r.Received > 0 {
		r.SubTime = time.Duration(lastAt.Load() - start.UnixNano())
		r.SubRate = float64(r.Received) / r.SubTime.Seconds()
		r.SubMB = r.SubRate * mb
		var all []time.Duration
		for _, l := range lats {
			all = append(all, l...)
		}
		slices.Sort(all)
		for _, p := range []float64{50, 90, 99, 99.9, 100} {
			i := min(int(float64(len(all))*p/100), len(all)-1)
			r.Latency = append(r.Latency, latency{p, all[i]})
		}
	}
	if c.o.json {
		b, _ := json.Marshal(r)
		_, err := fmt.Fprintf(c.out, "%s\n", b)
		return err
	}
	printBench(c.out, &r)
	if int64(r.Received) < want {
		return fmt.Errorf("bench: subscribers received %d of %d messages", r.Received, want)
	}
	return nil
}

func printBench(w io.Writer, r *benchResult) {
	fmt.Fprintf(w, "bench on channel %s: %d publishers, %d subscribers, %d messages of %d bytes\n",
		r.Channel, r.Publishers, r.Subscribers, r.Count, r.Size)
	fmt.Fprintf(w, "pub: %d msgs in %v: %.0f msgs/s, %.2f MB/s\n", r.Count, r.PubTime.Round(time.Millisecond), r.PubRate, r.PubMB)
	if r.Subscribers == 0 {
		return
	}
	fmt.Fprintf(w, "sub: %d msgs in %v: %.0f msgs/s, %.2f MB/s (all subscribers)\n", r.Received, r.SubTime.Round(time.Millisecond), r.SubRate, r.SubMB)
	if len(r.Latency) > 0 {
		parts := make([]string, len(r.Latency))
		for i, l := range r.Latency {
			name := fmt.Sprintf("p%g", l.Percentile)
			if l.Percentile == 100 {
				name = "max"
			}
			parts[i] = fmt.Sprintf("%s %v", name, l.Value.Round(time.Microsecond))
		}
		fmt.Fprintf(w, "latency: %s\n", strings.Join(parts, ", "))
	}
}

// progressBar draws, on a terminal, a bar of the messages sent and
// received, redrawn every 100 ms, until the returned function is called.
func progressBar(w io.Writer, total int64, sent, received *atomic.Int64, want int64) (stop func()) {
	if !isTerminal(w) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	draw := func() {
		s, r := sent.Load(), received.Load()
		const width = 30
		full := int(float64(width) * float64(s) / float64(total))
		line := fmt.Sprintf("\r[%s%s] %3d%% sent %d/%d", strings.Repeat("#", full), strings.Repeat(".", width-full), 100*s/total, s, total)
		if want > 0 {
			line += fmt.Sprintf(", received %d/%d", r, want)
		}
		fmt.Fprint(w, line)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				draw()
				fmt.Fprint(w, "\r\n")
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

// isTerminal reports whether rw (a reader or a writer) is a terminal.
func isTerminal(rw any) bool {
	f, ok := rw.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
