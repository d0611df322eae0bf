package backbone

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// counters count what the backbone did.
type counters struct {
	msgsOut, bytesOut atomic.Uint64 // published (plain) or stored (durable)
	msgsIn, bytesIn   atomic.Uint64 // delivered to the server
	queueIn           atomic.Uint64 // of those, delivered for a queue group
	requeued          atomic.Uint64 // queue group messages published again (Requeue)
	dropped           atomic.Uint64 // not published: buffer full, too large, closed
	lost              atomic.Uint64 // gaps seen in other servers' sequences
	duplicates        atomic.Uint64 // dropped as already delivered
	unheard           atomic.Uint64 // durable deliveries sent back: no local listener
	malformed         atomic.Uint64 // envelopes or frames that did not parse
	tooLarge          atomic.Uint64 // large messages refused by reassembly bounds
	expired           atomic.Uint64 // of lost, large messages unfinished past the reassembly limit
	reassembling      atomic.Int64  // bytes held by unfinished large messages
	slow              atomic.Uint64 // slow-consumer events reported by nats.go
	reconnects        atomic.Uint64
	durableQueued     atomic.Int64 // bytes waiting for JetStream
	bufferedOut       atomic.Int64 // bytes waiting for the plain publisher
}

// Stats is a snapshot of a Backbone.
type Stats struct {
	State      string   // "connected", "reconnecting", "connecting", "closed"
	URL        string   // the server connected to, password removed; "" if none
	LastError  string   // the last connection problem, naming the URL; "" once connected
	Reconnects uint64   // reconnections since New
	MsgsOut    uint64   // messages published
	BytesOut   uint64   // their frame bytes
	MsgsIn     uint64   // messages received and delivered
	QueueIn    uint64   // of those, picked by NATS for a local queue group
	Requeued   uint64   // queue group messages published again for another server
	BytesIn    uint64   // their frame bytes
	Buffered   int      // bytes held by nats.go and the durable queues while NATS is unreachable or slow
	Dropped    uint64   // messages not published (buffer full, too large, closed)
	Lost       uint64   // messages of other servers known lost (sequence gaps, unfinished large messages)
	Duplicates uint64   // messages received twice and dropped
	Unheard    uint64   // durable messages sent back to JetStream for want of a local listener (each time)
	Malformed  uint64   // envelopes that did not parse
	TooLarge   uint64   // large messages past the reassembly bounds
	Expired    uint64   // of Lost, large messages dropped unfinished past Config.ReassemblyLimit
	Reassembly int      // bytes held by unfinished large messages
	Slow       uint64   // slow-consumer events (nats.go dropped messages for us)
	Subjects   []string // plain subjects subscribed to
	Groups     []string // queue subscriptions, "SUBJECT QUEUE"
	Durable    []string // durable channels consuming
}

// Stats returns b's figures.
func (b *Backbone) Stats() Stats {
	st := Stats{
		State:      stateNames[b.state.Load()],
		LastError:  "",
		Reconnects: b.st.reconnects.Load(),
		MsgsOut:    b.st.msgsOut.Load(),
		BytesOut:   b.st.bytesOut.Load(),
		MsgsIn:     b.st.msgsIn.Load() + b.st.queueIn.Load(),
		QueueIn:    b.st.queueIn.Load(),
		Requeued:   b.st.requeued.Load(),
		BytesIn:    b.st.bytesIn.Load(),
		Dropped:    b.st.dropped.Load(),
		Lost:       b.st.lost.Load(),
		Duplicates: b.st.duplicates.Load(),
		Unheard:    b.st.unheard.Load(),
		Malformed:  b.st.malformed.Load(),
		TooLarge:   b.st.tooLarge.Load(),
		Expired:    b.st.expired.Load(),
		Reassembly: int(b.st.reassembling.Load()),
		Slow:       b.st.slow.Load(),
		Subjects:   b.Subjects(),
		Groups:     b.Groups(),
	}
	if u := b.url.Load(); st.State == "connected" && u != nil {
		st.URL = *u
	} else if e := b.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	st.Buffered = int(b.buffered.Load() + b.st.durableQueued.Load() + b.st.bufferedOut.Load())
	for name, d := range b.durables {
		if d.consuming.Load() {
			st.Durable = append(st.Durable, name)
		}
	}
	return st
}

// The connection's states, as nats.go's handlers report them.
const (
	stateConnecting   = iota // no connection made yet
	stateConnected           // connected
	stateReconnecting        // lost, or the first attempt failed: retrying
	stateClosed              // closed
)

var stateNames = [...]string{"connecting", "connected", "reconnecting", "closed"}

// sampleBuffered keeps what nats.go holds of b's publications (while
// reconnecting, its reconnect buffer) for Stats. It is called by the
// publisher after each round and at each connection; a write stalled on
// the server stalls the sampling, not Stats.
func (b *Backbone) sampleBuffered(nc *nats.Conn) {
	n, err := nc.Buffered()
	if err != nil {
		n = 0
	}
	b.buffered.Store(int64(n))
}

// warnInterval is the least time between two warnings of one kind.
const warnInterval = 5 * time.Second

// warner logs drops and connection errors, at most once per warnInterval
// each, so a flood does not flood the log.
type warner struct {
	log      *slog.Logger
	mu       sync.Mutex
	lastDrop time.Time
	lastErr  time.Time
	errText  string
	warned   [4]uint64 // dropped, lost, malformed, slow at the last warning
}

func (w *warner) soon(st *counters) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.lastDrop) < warnInterval {
		return
	}
	w.dropsLocked(st)
}

func (w *warner) dropsLocked(st *counters) {
	cur := [4]uint64{st.dropped.Load(), st.lost.Load(), st.malformed.Load() + st.tooLarge.Load(), st.slow.Load()}
	if cur == w.warned {
		return
	}
	prev := w.warned
	w.warned, w.lastDrop = cur, time.Now()
	var args []any
	for i, key := range []string{"dropped", "lost", "malformed", "slow_consumer"} {
		if cur[i] > prev[i] {
			args = append(args, key, cur[i]-prev[i])
		}
	}
	w.log.Warn("nats: messages dropped", args...)
}

func (w *warner) errorSoon(text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if text == w.errText && time.Since(w.lastErr) < warnInterval {
		return
	}
	w.errText, w.lastErr = text, time.Now()
	w.log.Error("nats: " + text)
}

// flush logs what the last interval held back.
func (w *warner) flush(st *counters) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropsLocked(st)
}
