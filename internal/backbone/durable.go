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
	// heir, once set (a reload's TakeSends), takes the channel's sends
	// and what was queued here and not in flight, numbered on from seq;
	// this one stores what it had in flight, and its publishLoop ends
	// (ended). flight is how many items at the queue's head are being
	// stored. after, if set, is the ended of the durable this one took
	// over from: it stores nothing before that one's last store ended, so
	// that the stream holds the messages in emit order.
	heir   *durable
	flight int
	after  chan struct{}
	ended  chan struct{}
	// storeHook, set by tests, runs before each store: holding it holds
	// the publication in flight.
	storeHook atomic.Pointer[func()]

	kickc chan struct{} // connected: (re)create stream and consumer
	// want is whether a local agent can receive the channel's messages;
	// wantc says it changed. The consumer runs only while want holds:
	// one that ran on with no listener would acknowledge what it
	// delivered to no one, and the next listener would not get it.
	want      atomic.Bool
	wantc     chan struct{}
	consuming atomic.Bool
	stopc     chan struct{}
	// haltc ends consuming for good (StopConsuming), stopc too; idle is
	// closed once the consumer has stopped for good (see setupLoop).
	haltc    chan struct{}
	haltOnce sync.Once
	idle     chan struct{}

	// hmu is held by the consumer's handler and its sweep, across runs:
	// a handler that outlasts stop's bound finishes before the next
	// run's first one starts, so one channel's deliveries never run
	// side by side. r, under hmu, is the runs' receiver: kept from one
	// run to the next, it drops as a duplicate what an earlier run
	// delivered and JetStream brings again (its ack lost or too late).
	hmu sync.Mutex
	r   *receiver
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
		haltc:    make(chan struct{}),
		idle:     make(chan struct{}),
		ended:    make(chan struct{}),
	}
	d.cond = sync.NewCond(&d.mu)
	d.r = newReceiver(b)
	d.r.holdGaps, d.r.gapWait = true, gapWait
	d.r.listening = d.listening
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

// halt stops the consumer for good; the channel still publishes.
func (d *durable) halt() {
	d.haltOnce.Do(func() { close(d.haltc) })
}

// send queues a frame for JetStream, which it keeps (the caller's copy),
// waiting up to durableSendWait for room; once the channel is handed over
// (heir), the heir queues it.
func (d *durable) send(event string, frame []byte) error {
	it := durItem{subj: d.b.subj.event(d.channel, event), frame: frame}
	d.mu.Lock()
	deadline := time.Now().Add(durableSendWait)
	for !d.done && d.heir == nil && d.bytes > 0 && d.bytes+len(frame) > d.limit {
		if time.Now().After(deadline) {
			d.mu.Unlock()
			d.b.st.dropped.Add(1)
			d.b.warn.soon(&d.b.st)
			return ErrDropped
		}
		d.mu.Unlock()
		time.Sleep(time.Millisecond)
		d.mu.Lock()
	}
	if h := d.heir; h != nil {
		d.mu.Unlock()
		return h.send(event, frame)
	}
	defer d.mu.Unlock()
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
// stored in JetStream (or dropped), or ctx ends; those handed over too.
func (d *durable) waitStored(ctx context.Context) error {
	d.mu.Lock()
	target := d.seq
	d.mu.Unlock()
	for {
		d.mu.Lock()
		ok := d.stored >= target || d.done
		heir, after := d.heir, d.after
		d.mu.Unlock()
		if heir != nil {
			return heir.waitStored(ctx)
		}
		if ok && after != nil && !d.done {
			select {
			case <-after: // the one taken over from: its flight ended
			default:
				ok = false
			}
		}
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
	defer close(d.ended)
	var buf []byte
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.done && d.heir == nil {
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
		if len(d.queue) == 0 { // handed over, its last store done
			d.mu.Unlock()
			return
		}
		if after := d.after; after != nil {
			d.mu.Unlock()
			select {
			case <-after:
			case <-d.stopc:
			}
			d.mu.Lock()
			d.after = nil
			d.mu.Unlock()
			continue
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
		d.flight = k
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
		d.flight = 0
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
	if h := d.storeHook.Load(); h != nil {
		(*h)()
	}
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
// consumes while there is interest, until stop or halt. A consumer
// stopped with messages in flight gets them back first when it starts
// again (pendingLeft).
func (d *durable) setupLoop() {
	defer d.b.wg.Done()
	// Closed after the last run's stop (deferred below, so run first).
	defer close(d.idle)
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
	// ctx ends with stop or halt, not only with the backbone: Close and a
	// reload's StopConsuming wait for this loop, and a setup waiting for an
	// unreachable NATS would hold them for its whole timeout.
	ctx, cancel := context.WithCancel(d.b.ctx)
	defer cancel()
	go func() {
		select {
		case <-d.stopc:
		case <-d.haltc:
		case <-ctx.Done():
		}
		cancel()
	}()
	var cons jetstream.Consumer
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		setup := true
		select {
		case <-d.stopc:
			return
		case <-d.haltc:
			return
		case <-d.kickc:
		case <-retry.C:
		case <-d.wantc:
			setup = cons == nil
		}
		if setup {
			c, err := d.setup(ctx)
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
			if cc, err = d.consume(ctx, cons); err != nil {
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
func (d *durable) setup(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
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
// each after local delivery. One that comes while no local agent listens
// (the last one left and the consumer is yet to stop) is not delivered
// but negatively acknowledged, to come again after unheardWait: acked, it
// would be lost to the next listener.
func (d *durable) consume(ctx context.Context, c jetstream.Consumer) (jetstream.ConsumeContext, error) {
	old, err := d.leftPending(ctx, c)
	if err != nil {
		return nil, err
	}
	fresh := true
	cc, err := c.Consume(func(m jetstream.Msg) {
		// Not taken before: setupLoop must not wait for a handler
		// that outlasted stop.
		d.hmu.Lock()
		defer d.hmu.Unlock()
		if fresh {
			// A gap seen by an earlier run waits from now: its
			// messages come again only while a run consumes.
			fresh = false
			for _, ps := range d.r.peers {
				clear(ps.gaps)
			}
			// So does a large message whose last piece was sent back.
			d.r.parts.resume(time.Now())
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		theirs := m.Headers().Get(hdrOrigin) != d.consumer
		if theirs && !d.listening() {
			old.unheard(seq, time.Now())
			d.b.st.unheard.Add(1)
			m.NakWithDelay(unheardWait)
			return
		}
		if old.hold(seq, time.Now()) {
			m.NakWithDelay(50 * time.Millisecond)
			return
		}
		if theirs {
			_, retry, unheard := d.r.handle(m.Subject(), d.channel, m.Data())
			if unheard {
				// The last listener left after the check above, before
				// the routing: as if it had left before.
				old.unheard(seq, time.Now())
				d.b.st.unheard.Add(1)
				m.NakWithDelay(unheardWait)
				return
			}
			if retry {
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
	go d.sweepLoop(cc)
	return cc, nil
}

// listening reports whether a local agent listens to the channel now:
// the server says so (Config.Listening) and has not withdrawn its
// interest (SetInterest, which stops the consumer soon after).
func (d *durable) listening() bool {
	return d.want.Load() && (d.b.cfg.Listening == nil || d.b.cfg.Listening(d.channel))
}

// sweepLoop drops r's large messages unfinished past the reassembly
// limit, as the plain and queue receivers do, whether or not anything
// arrives on the channel, until the consumer stops.
func (d *durable) sweepLoop(cc jetstream.ConsumeContext) {
	defer d.b.wg.Done()
	sweep := time.NewTicker(d.r.parts.sweepEvery())
	defer sweep.Stop()
	for {
		select {
		case t := <-sweep.C:
			d.hmu.Lock()
			d.r.parts.sweep(t, true)
			d.hmu.Unlock()
		case <-cc.Closed():
			return
		case <-d.stopc:
			return
		}
	}
}
