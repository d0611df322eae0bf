package backbone

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Queue groups across servers (docs/PROTOCOL.md, "NATS backbone", "Queue
// groups"). Each group of a server's agents is one NATS queue
// subscription, on the subject its pattern maps to, with a queue name
// made from the group's channel, name and pattern: NATS picks one
// subscription of each queue name for every message, so exactly one
// server in the whole system gets it for the group. The queue
// subscriptions are on a second connection that sees its own server's
// publications (no NoEcho), so the publishing server is picked like any
// other; it holds nothing else.

// Group is a queue group of a server's agents: the channel its members
// are in, its name and its pattern. Its messages come on the subjects of
// a channel whose network messages reach it (its own, or one that
// propagates to it).
type Group struct {
	Channel, Name, Pattern string
}

// DeliverGroupFunc receives a message NATS picked this server for, for
// group g: node is the origin server (this server's own id for its own
// publications) and frame a whole wire Msg or Call frame as its agent
// sent it, valid only during the call. The origin is the envelope's node,
// whatever the frame's Node field says, except for a message published
// again for a group (Requeue), whose frame names its origin. NATS peers
// are trusted with node ids as with NATS credentials: nothing tells this
// server's own publications (which its queue connection sees) from a
// peer's envelope that claims its id. It is called from one goroutine.
type DeliverGroupFunc func(node NodeID, g Group, frame []byte)

// queueName is the NATS queue name of g: unique per group channel, name
// and pattern, the same on every server.
func queueName(g Group) string {
	h := sha256.Sum256([]byte(g.Channel + "\x00" + g.Name + "\x00" + g.Pattern))
	return string(appendToken(nil, g.Channel)) + "." + g.Name + "." + hex.EncodeToString(h[:8])
}

// qsub is one queue subscription: a subject and a queue name.
type qsub struct{ subj, queue string }

// queues holds the queue subscriptions and their connection.
type queues struct {
	b    *Backbone
	nc   *nats.Conn
	mu   sync.Mutex
	want map[string]map[qsub]Group     // channel → its queue subscriptions
	subs map[qsub]*nats.Subscription   // active
	grp  map[string]Group              // queue name → group
	mirr map[string]*nats.Subscription // piece subjects (plain)
	gone map[string]time.Time          // queue names drained since LeaveGroup last flushed: when (up to goneKeep)
	msgs chan *nats.Msg
	done chan struct{}

	goneAll time.Time // when gone overflowed (pruneGoneLocked)

	// listed is what Groups returns, set under mu whenever subs changes
	// (Stats reads it without mu; see interest.listed).
	listed atomic.Pointer[[]string]
}

func (q *queues) init(b *Backbone) {
	q.b = b
	q.want = make(map[string]map[qsub]Group)
	q.subs = make(map[qsub]*nats.Subscription)
	q.grp = make(map[string]Group)
	q.mirr = make(map[string]*nats.Subscription)
	q.gone = make(map[string]time.Time)
	q.msgs = make(chan *nats.Msg, inQueue)
	q.done = make(chan struct{})
}

// connect opens the queue connection: the options of the main one, with
// echo, named NAME+" queues".
func (q *queues) connect(urls string, opts []nats.Option) error {
	opts = append(slices.Clone(opts), func(o *nats.Options) error {
		o.NoEcho = false
		o.Name += " queues"
		o.ConnectedCB, o.ReconnectedCB = nil, nil // the main connection reports
		return nil
	})
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return err
	}
	q.nc = nc
	return nil
}

// SetGroups says which queue groups the local agents that can receive
// channel's network messages form. An empty set leaves them all: NATS
// stops picking this server for them at once (messages it had already
// picked it for still arrive and are delivered, or counted lost by the
// server if the group has no member left). Without a DeliverGroup in the
// Config, it does nothing.
func (b *Backbone) SetGroups(channel string, groups []Group) {
	q := &b.qs
	if q.nc == nil || b.durables[channel] != nil {
		return
	}
	set := make(map[qsub]Group, len(groups))
	for _, g := range groups {
		set[qsub{b.subj.interest(channel, g.Pattern), queueName(g)}] = g
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if b.closed.Load() || maps.Equal(set, q.want[channel]) {
		return
	}
	if len(set) == 0 {
		delete(q.want, channel)
	} else {
		q.want[channel] = set
	}
	q.syncLocked()
}

// syncLocked makes the subscriptions match q.want: new queue
// subscriptions and the piece subjects they need at once, queue
// subscriptions no longer wanted drained at once, piece subjects
// retireDelay later (the pieces of a message picked just before follow
// its head).
func (q *queues) syncLocked() {
	all := make(map[qsub]Group)
	for _, set := range q.want {
		maps.Copy(all, set)
	}
	// The groups by queue name: those wanted, and those drained now,
	// whose last messages may still come.
	grp := make(map[string]Group, len(all))
	pieces := make(map[string]bool)
	for s, g := range all {
		pieces[q.b.subj.pieces(s.subj)] = true
		grp[s.queue] = g
		if q.subs[s] != nil {
			continue
		}
		sub, err := q.nc.ChanQueueSubscribe(s.subj, s.queue, q.msgs)
		if err != nil {
			q.b.setErr(fmt.Errorf("queue subscription %s %s: %w", s.subj, s.queue, err))
			continue
		}
		sub.SetPendingLimits(pendingMsgs, pendingBytes)
		q.subs[s] = sub
	}
	for s, sub := range q.subs {
		if _, ok := all[s]; !ok {
			if g, ok := q.grp[s.queue]; ok {
				grp[s.queue] = g
			}
			if sub.Drain() != nil {
				sub.Unsubscribe()
			}
			delete(q.subs, s)
			q.gone[s.queue] = time.Now()
		}
	}
	q.pruneGoneLocked(time.Now())
	q.grp = grp
	q.listLocked()
	want := minimal(pieces)
	for _, p := range want {
		if q.mirr[p] != nil {
			continue
		}
		sub, err := q.nc.ChanSubscribe(p, q.msgs)
		if err != nil {
			q.b.setErr(fmt.Errorf("subscription %s: %w", p, err))
			continue
		}
		sub.SetPendingLimits(pendingMsgs, pendingBytes)
		q.mirr[p] = sub
	}
	var gone []*nats.Subscription
	for p, sub := range q.mirr {
		if !slices.Contains(want, p) {
			gone = append(gone, sub)
			delete(q.mirr, p)
		}
	}
	if len(gone) > 0 {
		time.AfterFunc(retireDelay, func() {
			for _, sub := range gone {
				if sub.Drain() != nil {
					sub.Unsubscribe()
				}
			}
		})
	}
}

// A drained queue name is remembered for LeaveGroup for goneKeep (by
// then the NATS server has long seen the unsubscription, or the
// connection that had it is gone), and at most maxGone of them: past
// that, they are forgotten and LeaveGroup flushes for any name for
// goneKeep. Queue names cycled by local agents do not pile up.
const (
	goneKeep = time.Minute
	maxGone  = 1 << 12
)

// pruneGoneLocked forgets the queue names drained more than goneKeep
// before t, or all of them past maxGone.
func (q *queues) pruneGoneLocked(t time.Time) {
	if len(q.gone) > maxGone {
		clear(q.gone)
		q.goneAll = t
	}
	for name, at := range q.gone {
		if t.Sub(at) > goneKeep {
			delete(q.gone, name)
		}
	}
}

// group returns the group of queue name.
func (q *queues) group(queue string) (Group, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	g, ok := q.grp[queue]
	return g, ok
}

// Groups returns the queue subscriptions, "SUBJECT QUEUE", sorted.
func (b *Backbone) Groups() []string {
	if l := b.qs.listed.Load(); l != nil {
		return slices.Clone(*l)
	}
	return []string{}
}

// listLocked sets what Groups returns from subs.
func (q *queues) listLocked() {
	out := make([]string, 0, len(q.subs))
	for s := range q.subs {
		out = append(out, s.subj+" "+s.queue)
	}
	sort.Strings(out)
	q.listed.Store(&out)
}

// FlushGroups waits for a round trip on the queue connection: the NATS
// server then holds every queue subscription made before.
func (b *Backbone) FlushGroups() error {
	if b.qs.nc == nil {
		return nil
	}
	return b.qs.nc.FlushTimeout(5 * time.Second)
}

// receive delivers the queue connection's messages until close.
func (q *queues) receive() {
	defer q.b.wg.Done()
	r := newQueueReceiver(q)
	sweep := time.NewTicker(r.parts.sweepEvery())
	defer sweep.Stop()
	for {
		select {
		case t := <-sweep.C:
			r.parts.sweep(t, true)
		case m := <-q.msgs:
			if len(m.Data) == 0 && m.Reply != "" {
				q.nc.Publish(m.Reply, nil) // a probe: this server has a member
				continue
			}
			r.handle(m)
		case <-q.done:
			return
		}
	}
}

// close ends the queue connection and stops receive.
func (q *queues) close() {
	if q.nc == nil {
		return
	}
	q.mu.Lock()
	for s, sub := range q.subs {
		sub.Unsubscribe()
		delete(q.subs, s)
	}
	q.listLocked()
	q.mu.Unlock()
	if q.nc.IsConnected() {
		q.nc.FlushTimeout(time.Second)
	}
	q.nc.Close()
	close(q.done)
}

// LeaveGroup drops g's queue subscriptions now, ahead of the SetGroups
// that would, and waits for a round trip on the queue connection, so that
// NATS no longer picks this server for g: what the server then publishes
// again for g (Requeue) goes to another server. The caller has the
// groups set again afterwards (a member may have joined meanwhile).
func (b *Backbone) LeaveGroup(g Group) {
	q := &b.qs
	if q.nc == nil {
		return
	}
	name := queueName(g)
	q.mu.Lock()
	found := false
	for ch, set := range q.want {
		for s := range set {
			if s.queue == name {
				delete(set, s)
				found = true
			}
		}
		if len(set) == 0 {
			delete(q.want, ch)
		}
	}
	if found {
		q.syncLocked()
	}
	// Drained now or by a SetGroups before: the NATS server may not have
	// seen the unsubscription yet (it came on this connection, the
	// publication will come on the other).
	_, flush := q.gone[name]
	delete(q.gone, name)
	flush = flush || time.Since(q.goneAll) < goneKeep
	q.mu.Unlock()
	if flush && q.nc.IsConnected() {
		q.nc.FlushTimeout(time.Second)
	}
}
