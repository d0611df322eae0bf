package backbone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/internal/wire"
)

// Errors returned by Replay.
var (
	// ErrNotDurable: the channel has no JetStream stream to replay.
	ErrNotDurable = errors.New("backbone: not a durable channel")
	// ErrNotConnected: NATS is not reachable now.
	ErrNotConnected = errors.New("backbone: not connected to NATS")
)

// replayFetch is how many stored messages one fetch asks for.
const replayFetch = 256

// Stored is one message read back from a durable channel's stream.
type Stored struct {
	Node  NodeID // the server that published it
	Local bool   // published by this server (Node is this server's id)
	Frame []byte // its Msg frame, as the agent sent it
}

// Replay returns the last n Msg frames stored in channel's stream for
// which keep returns true, oldest first, among those stored at or after
// since (zero: no bound). It first waits until what this server queued
// for the stream before the call is stored. It reads the stream with an ephemeral consumer
// that it deletes; it never touches the durable consumers. Whole
// messages only: a large message whose first piece is before the window
// is left out.
func (b *Backbone) Replay(ctx context.Context, channel string, n int, since time.Time, keep func(frame []byte) bool) ([]Stored, error) {
	d := b.durables[channel]
	if d == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotDurable, channel)
	}
	if n <= 0 {
		return nil, fmt.Errorf("backbone: replay of %d messages", n)
	}
	if b.closed.Load() || !b.nc.IsConnected() {
		return nil, fmt.Errorf("durable channel %s: %w", channel, ErrNotConnected)
	}
	// What this server's agents emitted before is in the stream before
	// its end is read: a listener registered before the replay (WithReplay)
	// misses none of it.
	if err := d.waitStored(ctx); err != nil {
		return nil, fmt.Errorf("durable channel %s: waiting for its messages to be stored: %w", channel, err)
	}
	s, err := b.js.Stream(ctx, d.stream)
	if err != nil {
		return nil, fmt.Errorf("durable channel %s: stream %s: %w", channel, d.stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return nil, nil
	}
	if !since.IsZero() {
		cfg := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}
		return b.replayRange(ctx, d, cfg, st.LastSeq, n, keep)
	}
	// The last n messages are in the last n stored envelopes, unless
	// batches or pieces (or keep) make them more: widen until they are.
	for window := uint64(n); ; window *= 4 {
		start := st.FirstSeq
		if st.LastSeq-st.FirstSeq+1 > window {
			start = st.LastSeq - window + 1
		}
		cfg := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
		out, err := b.replayRange(ctx, d, cfg, st.LastSeq, n, keep)
		if err != nil || len(out) >= n || start == st.FirstSeq {
			return out, err
		}
	}
}

// replayRange reads d's stream from where cfg starts up to sequence last
// and returns the last n kept frames.
func (b *Backbone) replayRange(ctx context.Context, d *durable, cfg jetstream.ConsumerConfig, last uint64, n int, keep func([]byte) bool) ([]Stored, error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = 30 * time.Second
	cons, err := b.js.CreateConsumer(ctx, d.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("durable channel %s: replay consumer on %s: %w", d.channel, d.stream, err)
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		_ = b.js.DeleteConsumer(dctx, d.stream, info.Name) // else it expires after InactiveThreshold
	}()
	r := replayDecoder{max: b.maxReassembled()}
	pending := info.NumPending
	for pending > 0 {
		wait := time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(dl)), 10*time.Millisecond)
		}
		batch, err := cons.Fetch(int(min(pending, replayFetch)), jetstream.FetchMaxWait(wait)) // no more than are stored: Fetch waits for a full batch
		if err != nil {
			return nil, fmt.Errorf("durable channel %s: replay: %w", d.channel, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pending--
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > last {
				pending = 0
				break
			}
			r.add(m.Data(), func(node NodeID, frame []byte) {
				if keep(frame) {
					r.out = append(r.out, Stored{Node: node, Local: node == b.cfg.NodeID, Frame: append([]byte(nil), frame...)})
					if len(r.out) > 2*n {
						r.out = append(r.out[:0], r.out[len(r.out)-n:]...)
					}
				}
			})
			if md.Sequence.Stream == last {
				pending = 0
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("durable channel %s: replay: %w", d.channel, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("durable channel %s: replay: %w", d.channel, err)
		}
		if got == 0 {
			break // nothing more is stored
		}
	}
	if len(r.out) > n {
		r.out = r.out[len(r.out)-n:]
	}
	return r.out, nil
}

// replayDecoder turns stored envelopes into Msg frames: no sequence
// checks (the stream is ordered and deduplicated), only reassembly, of
// frames up to max bytes (a stored first piece claiming more is skipped
// with the rest of its message: nothing is reserved for it).
type replayDecoder struct {
	max  int
	part map[NodeID]*part
	out  []Stored
}

func (r *replayDecoder) add(data []byte, emit func(NodeID, []byte)) {
	e, err := parseEnvelope(data)
	if err != nil {
		return
	}
	switch e.kind {
	case kindMsg:
		emitMsg(e.node, e.body, emit)
	case kindBatch:
		rest := e.body
		for range e.count {
			n, ok := wire.FrameLen(rest)
			if !ok || n > len(rest) {
				return
			}
			emitMsg(e.node, rest[:n], emit)
			rest = rest[n:]
		}
	case kindChunk:
		if r.part == nil {
			r.part = make(map[NodeID]*part)
		}
		p := r.part[e.node]
		if e.offset == 0 {
			if int(e.total) > r.max {
				delete(r.part, e.node)
				return
			}
			p = &part{seq: e.seq, buf: make([]byte, 0, e.total)}
			r.part[e.node] = p
		}
		if p == nil || p.seq != e.seq || int(e.offset) != len(p.buf) || cap(p.buf) != int(e.total) {
			delete(r.part, e.node)
			return
		}
		p.buf = append(p.buf, e.body...)
		if len(p.buf) == cap(p.buf) {
			delete(r.part, e.node)
			emitMsg(e.node, p.buf, emit)
		}
	}
}

// emitMsg passes on frame if it is one whole Msg frame.
func emitMsg(node NodeID, frame []byte, emit func(NodeID, []byte)) {
	if n, ok := wire.FrameLen(frame); ok && n == len(frame) && len(frame) >= wire.HeaderLen && frame[wire.HeaderLen-1] == wire.TypeMsg {
		emit(node, frame)
	}
}
