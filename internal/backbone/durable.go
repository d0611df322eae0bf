package backbone

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcluster/netcluster/config"
)

// Durable channels. Each has a JetStream stream, PREFIX=CLUSTER=CHANNEL
// (dots written '~'), holding the channel's subjects, and on each server a
// durable consumer named after the server's node name. Messages are
// published one envelope at a time (a batch of the messages waiting, when
// they are dense), each acknowledged by JetStream before the next (retried
// with the same Nats-Msg-Id, which JetStream deduplicates), so they are
// stored in emit order; the consumer delivers them in stream
// order and acknowledges each after local delivery.

const (
	// hdrOrigin names the consumer of the server that published a
	// message, so that a restarted server skips its own earlier messages.
	hdrOrigin = "Nc-Origin"

	durableSendWait = 2 * time.Second // how long Send waits for room
	minDurableQueue = 1 << 20
	publishTimeout  = 5 * time.Second
	retryWait       = 200 * time.Millisecond
	dedupWindow     = 2 * time.Minute
	// ackWait is how long JetStream waits for an acknowledgement before
	// it redelivers; gapWait how long a consumer waits for the messages
	// before a gap (redelivered after ackWait) before it counts them lost.
	ackWait = 3 * time.Second
	gapWait = 3 * ackWait
)

type durable struct {
	b        *Backbone
	channel  string
	cfg      config.Durable
	stream   string
	consumer string
	subject  string // the channel's wildcard

	mu    sync.Mutex
	cond  *sync.Cond
	queue []durItem
	bytes int
	limit int
	seq   uint64
	done  bool
	// stored is the last seq whose publication ended (stored or dropped):
	// queued items are numbered in order and published in order.
	stored uint64

	kickc chan struct{} // connected: (re)create stream and consumer
	// want is whether a local agent can receive the channel's messages;
	// wantc says it changed. The consumer runs only while want holds:
	// one that ran on with no listener would acknowledge what it
	// delivered to no one, and the next listener would not get it.
	want      atomic.Bool
	wantc     chan struct{}
	consuming atomic.Bool
	stopc     chan struct{}
}

type durItem struct {
	subj  string
	seq   uint64
	frame []byte
}

func newDurable(b *Backbone, channel string, cfg config.Durable) *durable {
	d := &durable{
		b:        b,
		channel:  channel,
		cfg:      cfg,
		stream:   StreamName(b.cfg.NATS.Prefix, b.cfg.NATS.Cluster, channel),
		consumer: ConsumerName(b.cfg.NodeName),
		subject:  b.subj.wildcard(channel),
		limit:    max(b.cfg.NATS.OutBuffer, minDurableQueue) + b.cfg.MaxMessage,
		kickc:    make(chan struct{}, 1),
		wantc:    make(chan struct{}, 1),
		stopc:    make(chan struct{}),
	}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// StreamName returns the JetStream stream of a durable channel.
func StreamName(prefix, cluster, channel string) string {
	return strings.ReplaceAll(prefix, ".", "~") + "=" + cluster + "=" + strings.ReplaceAll(channel, ".", "~")
}

// ConsumerName returns the durable consumer of the server named node.
func ConsumerName(node string) string {
	if plainToken(node) {
		return "nc-" + node
	}
	return "nc-x" + hex.EncodeToString([]byte(node))
}

func (d *durable) start() {
	d.b.wg.Add(2)
	go d.publishLoop()
	go d.setupLoop()
}

func (d *durable) kick() {
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

// wantConsume says whether to consume: while a local agent can receive.
func (d *durable) wantConsume(on bool) {
	if d.want.Swap(on) == on {
		return
	}
	select {
	case d.wantc <- struct{}{}:
	default:
	}
}

func (d *durable) stop() {
	d.mu.Lock()
	d.done = true
	d.cond.Broadcast()
	d.mu.Unlock()
	close(d.stopc)
}

// send queues a frame for JetStream, which it keeps (the caller's copy),
// waiting up to durableSendWait for room.
func (d *durable) send(event string, frame []byte) error {
	it := durItem{subj: d.b.subj.event(d.channel, event), frame: frame}
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline := time.Now().Add(durableSendWait)
	for !d.done && d.bytes > 0 && d.bytes+len(frame) > d.limit {
		if time.Now().After(deadline) {
			d.b.st.dropped.Add(1)
			d.b.warn.soon(&d.b.st)
			return ErrDropped
		}
		d.mu.Unlock()
		time.Sleep(time.Millisecond)
		d.mu.Lock()
	}
	if d.done {
		d.b.st.dropped.Add(1)
		return ErrDropped
	}
	d.seq++
	it.seq = d.seq
	d.queue = append(d.queue, it)
	d.bytes += len(frame)
	d.b.st.durableQueued.Add(int64(len(frame)))
	d.cond.Signal()
	return nil
}

// waitStored waits until the messages queued before the call have been
// stored in JetStream (or dropped), or ctx ends.
func (d *durable) waitStored(ctx context.Context) error {
	d.mu.Lock()
	target := d.seq
	d.mu.Unlock()
	for {
		d.mu.Lock()
		ok := d.stored >= target || d.done
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// publishLoop stores the queued frames in order.
func (d *durable) publishLoop() {
	defer d.b.wg.Done()
	var buf []byte
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.done {
			d.cond.Wait()
		}
		if d.done {
			n := len(d.queue)
			d.b.st.durableQueued.Add(-int64(d.bytes))
			d.queue, d.bytes = nil, 0
			d.mu.Unlock()
			if n > 0 {
				d.b.st.dropped.Add(uint64(n))
				d.b.warn.soon(&d.b.st)
			}
			return
		}
		// The first item, and those after it on the same subject that fit
		// one batch envelope: one JetStream acknowledgement for all.
		it := d.queue[0]
		k, size := 1, len(it.frame)
		maxPayload := int(d.b.nc.MaxPayload())
		for k < len(d.queue) && k < durableBatch && d.queue[k].subj == it.subj &&
			size+len(d.queue[k].frame) <= durableBytes && envHeaderLen+4+size+len(d.queue[k].frame) <= maxPayload {
			size += len(d.queue[k].frame)
			k++
		}
		items := d.queue[:k]
		d.mu.Unlock()

		var err error
		if k == 1 {
			err = publishFrame(&buf, d.b.cfg.NodeID, 1, it.seq, it.frame, maxPayload, it.subj, func(subj string, data []byte) error {
				return d.store(subj, it.seq, data)
			})
		} else {
			buf = appendEnvHeader(buf[:0], kindBatch, d.b.cfg.NodeID, 1, it.seq)
			buf = binary.BigEndian.AppendUint32(buf, uint32(k))
			for _, x := range items {
				buf = append(buf, x.frame...)
			}
			err = d.store(it.subj, it.seq, buf)
		}

		d.mu.Lock()
		d.stored = items[k-1].seq
		d.queue = d.queue[k:]
		d.bytes -= size
		d.mu.Unlock()
		d.b.st.durableQueued.Add(-int64(size))
		if err != nil {
			d.b.st.dropped.Add(uint64(k))
			d.b.warn.soon(&d.b.st)
			continue
		}
		d.b.st.msgsOut.Add(uint64(k))
		d.b.st.bytesOut.Add(uint64(size))
	}
}

// store publishes one envelope to JetStream, retrying until it is
// acknowledged or the backbone closes.
func (d *durable) store(subj string, seq uint64, data []byte) error {
	m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	// The piece's offset makes pieces of one message distinct.
	id := hex.EncodeToString(d.b.cfg.NodeID[:]) + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(len(data)) + "-" + hex.EncodeToString(data[envHeaderLen:min(len(data), chunkHeaderLen)])
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(hdrOrigin, d.consumer)
	for {
		ctx, cancel := context.WithTimeout(d.b.ctx, publishTimeout)
		_, err := d.b.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			return nil
		}
		if d.b.ctx.Err() != nil {
			return err
		}
		d.b.setErr(fmt.Errorf("durable channel %s: storing in stream %s: %w", d.channel, d.stream, err))
		select {
		case <-d.stopc:
			return err
		case <-time.After(retryWait):
		}
	}
}

// setupLoop creates the stream and the consumer on every connection, and
// consumes while there is interest. A consumer stopped with messages in
// flight gets them back first when it starts again (pendingLeft).
func (d *durable) setupLoop() {
	defer d.b.wg.Done()
	var cc jetstream.ConsumeContext
	stop := func() {
		// No handler runs after Close returns.
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
		cc = nil
		d.consuming.Store(false)
	}
	defer func() {
		if cc != nil {
			stop()
		}
	}()
	var cons jetstream.Consumer
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		setup := true
		select {
		case <-d.stopc:
			return
		case <-d.kickc:
		case <-retry.C:
		case <-d.wantc:
			setup = cons == nil
		}
		if setup {
			c, err := d.setup()
			if err != nil {
				d.b.setErr(err)
				retry.Reset(time.Second)
				continue
			}
			cons = c
		}
		want := d.want.Load()
		if cc != nil && !want {
			stop()
		}
		if cc == nil && want && cons != nil {
			var err error
			if cc, err = d.consume(cons); err != nil {
				d.b.setErr(fmt.Errorf("durable channel %s: consuming %s: %w", d.channel, d.stream, err))
				retry.Reset(time.Second)
				continue
			}
			d.consuming.Store(true)
		}
	}
}

// setup creates the stream, or updates it if its settings differ, and
// creates this server's consumer if it does not exist. (It asks before
// it writes: every server does this at every connection, and needless
// updates of a stream race with consumer creation inside nats-server.)
func (d *durable) setup() (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(d.b.ctx, publishTimeout)
	defer cancel()
	want := jetstream.StreamConfig{
		Name:       d.stream,
		Subjects:   []string{d.subject},
		Storage:    jetstream.FileStorage,
		Replicas:   d.cfg.Replicas,
		MaxAge:     d.cfg.MaxAge,
		MaxBytes:   d.cfg.MaxBytes,
		Discard:    jetstream.DiscardOld,
		Duplicates: dedupWindow,
	}
	s, err := d.b.js.Stream(ctx, d.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = d.b.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another server was first
		}
	case err == nil:
		if have := s.CachedInfo().Config; !sameStream(have, want) {
			_, err = d.b.js.UpdateStream(ctx, want)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("durable channel %s: stream %s: %w", d.channel, d.stream, err)
	}
	c, err := d.b.js.Consumer(ctx, d.stream, d.consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = d.b.js.CreateConsumer(ctx, d.stream, jetstream.ConsumerConfig{
			Durable:   d.consumer,
			AckPolicy: jetstream.AckExplicitPolicy,
			// From this server's start, not from the consumer's creation
			// (deliver-new): what other servers stored between the two
			// (the connection, the stream's setup) is not skipped.
			DeliverPolicy: jetstream.DeliverByStartTimePolicy,
			OptStartTime:  &d.b.started,
			FilterSubject: d.subject,
			MaxAckPending: 4096,
			AckWait:       ackWait,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("durable channel %s: consumer %s on %s: %w", d.channel, d.consumer, d.stream, err)
	}
	return c, nil
}

// sameStream reports whether the settings the server controls agree.
func sameStream(a, b jetstream.StreamConfig) bool {
	return slices.Equal(a.Subjects, b.Subjects) && a.Replicas == b.Replicas && a.MaxAge == b.MaxAge &&
		a.MaxBytes == b.MaxBytes && a.Discard == b.Discard && a.Duplicates == b.Duplicates && a.Storage == b.Storage
}

// consume delivers the consumer's messages in stream order, acknowledging
// each after local delivery.
func (d *durable) consume(c jetstream.Consumer) (jetstream.ConsumeContext, error) {
	r := newReceiver(d.b)
	r.holdGaps, r.gapWait = true, gapWait
	old, err := d.leftPending(c)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // r is the handler's (one goroutine at a time) and the sweep's
	cc, err := c.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if old.hold(m) {
			m.NakWithDelay(50 * time.Millisecond)
			return
		}
		if m.Headers().Get(hdrOrigin) != d.consumer {
			if _, retry := r.handle(m.Subject(), d.channel, m.Data()); retry {
				// What came before it is on its way again (a failover
				// cut it off): ask for this one again after it.
				m.NakWithDelay(50 * time.Millisecond)
				return
			}
		}
		if err := m.Ack(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			d.b.setErr(fmt.Errorf("durable channel %s: ack: %w", d.channel, err))
		}
	}, jetstream.PullMaxMessages(256), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !d.b.closed.Load() {
			d.b.setErr(fmt.Errorf("durable channel %s: %w", d.channel, err))
		}
	}))
	if err != nil {
		return nil, err
	}
	d.b.wg.Add(1)
	go d.sweepLoop(&mu, r, cc)
	return cc, nil
}

// pendingLeft is what an earlier run of this server left delivered and
// not acknowledged (it stopped with them in flight). JetStream redelivers
// them only after ackWait, and delivers what comes after them at once: a
// new receiver would start its sequences from the later ones and drop the
// earlier ones, when they came back, as duplicates. So the later ones
// wait (are asked for again) until the earlier ones are back, or for up
// to gapWait (acknowledgements the earlier run sent as it stopped can
// make the count too high).
type pendingLeft struct {
	last  uint64 // the stream sequence delivered last before this run
	left  int    // how many of those up to last are still to come back
	until time.Time
}

// leftPending reads c's state before this run consumes from it.
func (d *durable) leftPending(c jetstream.Consumer) (*pendingLeft, error) {
	ctx, cancel := context.WithTimeout(d.b.ctx, publishTimeout)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &pendingLeft{last: info.Delivered.Stream, left: info.NumAckPending, until: time.Now().Add(gapWait)}, nil
}

// hold reports whether m is to wait for the earlier run's messages.
func (p *pendingLeft) hold(m jetstream.Msg) bool {
	if p.left <= 0 {
		return false
	}
	md, err := m.Metadata()
	if err != nil {
		return false
	}
	if md.Sequence.Stream <= p.last {
		p.left-- // one of them, back
		return false
	}
	if time.Now().After(p.until) {
		p.left = 0
		return false
	}
	return true
}

// sweepLoop drops r's large messages unfinished past the reassembly
// limit, as the plain and queue receivers do, whether or not anything
// arrives on the channel, until the consumer stops.
func (d *durable) sweepLoop(mu *sync.Mutex, r *receiver, cc jetstream.ConsumeContext) {
	defer d.b.wg.Done()
	sweep := time.NewTicker(r.parts.sweepEvery())
	defer sweep.Stop()
	for {
		select {
		case t := <-sweep.C:
			mu.Lock()
			r.parts.sweep(t, true)
			mu.Unlock()
		case <-cc.Closed():
			return
		case <-d.stopc:
			return
		}
	}
}
