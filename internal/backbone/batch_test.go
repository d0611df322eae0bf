package backbone

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// Messages that wait together go in batches as large as batchLimit lets
// them (up to maxBatch frames): a burst of 3,000 messages of 128 bytes,
// all queued before the publisher looks, is published in as few NATS
// messages as the limit allows, each one full but the last, and none past
// the NATS server's max_payload. (Batches were cut at 256 frames and
// 64 KiB: 12 NATS messages where 2 do.)
func TestDenseBatchesFillTheLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		maxPayload int32
		wantLimit  int
	}{
		{"default max_payload", 0, batchBytes},
		{"max_payload 64 KiB", 64 << 10, 64 << 10},
		{"max_payload 100 KiB", 100 << 10, 100 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := natstest.Run(t, natstest.Options{NoJetStream: true, MaxPayload: tc.maxPayload})
			a, _ := open(t, natsCfg(ns.URL()), 1, nil)
			waitConnected(t, a)
			if got := a.batchLimit(); got != tc.wantLimit {
				t.Fatalf("batchLimit %d, want %d", got, tc.wantLimit)
			}
			nc, err := nats.Connect(ns.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			sub, err := nc.SubscribeSync(">")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}

			const n = 3000
			f := frame("A", "ag1", "ev", make([]byte, 128))
			size := len(f) + len(a.nodeHex) // as queued, the node written in
			subj := a.subj.event("A", "ev")
			a.pub.mu.Lock()
			for range n {
				a.queueLocked(subj, f, false, len(f))
			}
			a.pub.cond.Signal()
			a.pub.mu.Unlock()

			perBatch := min(maxBatch, (tc.wantLimit-batchHead)/size)
			var counts []int
			for total := 0; total < n; {
				m, err := sub.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatalf("after %d messages in %v: %v", total, counts, err)
				}
				e, err := parseEnvelope(m.Data)
				if err != nil || e.kind != kindBatch {
					t.Fatalf("envelope of kind %d (%v), want a batch", e.kind, err)
				}
				if len(m.Data) > tc.wantLimit {
					t.Errorf("a batch of %d bytes, past the limit %d", len(m.Data), tc.wantLimit)
				}
				if len(e.body) != int(e.count)*size {
					t.Errorf("a batch of %d frames holds %d bytes, want %d", e.count, len(e.body), int(e.count)*size)
				}
				counts = append(counts, int(e.count))
				total += int(e.count)
			}
			for i, c := range counts {
				if want := min(perBatch, n-i*perBatch); c != want {
					t.Errorf("batches of %v frames, want %d each but the last", counts, perBatch)
					break
				}
			}
			if tc.maxPayload == 0 && perBatch <= 256 {
				t.Errorf("%d frames a batch: the limit does not let batches grow", perBatch)
			}
		})
	}
}

// batchLimit: batchBytes, bounded by max_payload and by a quarter of
// outbuffer, never below minBatch; minBatch before any connection.
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxPayload int64
		outBuffer  int
		want       int
	}{
		{0, 8 << 20, minBatch},
		{1 << 20, 8 << 20, batchBytes},
		{1 << 20, 0, batchBytes},
		{100 << 10, 8 << 20, 100 << 10},
		{1 << 20, 512 << 10, 128 << 10},
		{1 << 20, 64 << 10, minBatch},
		{32 << 10, 64 << 10, 32 << 10},
	} {
		n := config.NewNATS()
		n.OutBuffer = tc.outBuffer
		b := &Backbone{cfg: Config{NATS: n}}
		b.maxPayload.Store(tc.maxPayload)
		if got := b.batchLimit(); got != tc.want {
			t.Errorf("max_payload %d, outbuffer %d: batchLimit %d, want %d", tc.maxPayload, tc.outBuffer, got, tc.want)
		}
	}
}
