package backbone

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Bounds of the plain subscriptions' delivery queue, shared by all of them
// so that one goroutine sees the messages in the order they arrived.
const (
	inQueue        = 1 << 16
	pendingMsgs    = 1 << 16
	pendingBytes   = 256 << 20
	resubscribeCap = 4096 // subjects per channel before falling back to its wildcard
)

// interest holds the plain subscriptions: per channel, the minimal set of
// subjects that covers what the local agents listen to.
type interest struct {
	b    *Backbone
	mu   sync.Mutex
	want map[string][]string           // channel → its subjects, minimal
	subs map[string]*nats.Subscription // subject → subscription
	msgs chan *nats.Msg
	done chan struct{}

	gen      uint64     // subscriptions made
	retiring int        // retire calls pending
	idle     *sync.Cond // on mu: retiring fell

	// listed is what Subjects returns, set under mu whenever subs
	// changes: Stats reads it without mu, which is held while nats.go
	// subscribes or flushes (a stalled NATS server holds those).
	listed atomic.Pointer[[]string]
}

func (in *interest) init(b *Backbone) {
	in.b = b
	in.want = make(map[string][]string)
	in.subs = make(map[string]*nats.Subscription)
	in.msgs = make(chan *nats.Msg, inQueue)
	in.done = make(chan struct{})
	in.idle = sync.NewCond(&in.mu)
}

// SetInterest says what the local agents that can receive channel's
// network messages listen to: patterns are their listener patterns, and
// all (an agent that cannot say, such as a legacy one) asks for
// everything. An empty set unsubscribes from the channel. Durable
// channels consume while they have interest.
func (b *Backbone) SetInterest(channel string, patterns []string, all bool) {
	if d := b.durables[channel]; d != nil {
		d.wantConsume(all || len(patterns) > 0)
		return
	}
	set := make(map[string]bool)
	if all {
		set[b.subj.wildcard(channel)] = true
	}
	for _, p := range patterns {
		set[b.subj.interest(channel, p)] = true
		if len(set) > resubscribeCap {
			set = map[string]bool{b.subj.wildcard(channel): true}
			break
		}
	}
	b.in.set(channel, withPieces(b.subj, minimal(set)))
}

// withPieces returns subjects and their piece subjects, sorted: a large
// message's head comes on its subject, the rest on the piece subject.
func withPieces(s subjects, subjects []string) []string {
	out := slices.Clone(subjects)
	for _, subj := range subjects {
		out = append(out, s.pieces(subj))
	}
	slices.Sort(out)
	return out
}

// set replaces channel's subjects, subscribing to the new ones at once
// and dropping the old ones retireDelay later, so nothing is missed; the
// receiver drops what arrives twice meanwhile. (nats.go discards what
// arrives for a subscription it has removed: a message the NATS server
// matched against the old subscription just before it saw the new one
// would otherwise be lost.)
func (in *interest) set(channel string, subjects []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.b.closed.Load() {
		return
	}
	old := in.want[channel]
	if slices.Equal(old, subjects) {
		return
	}
	for _, s := range subjects {
		if in.subs[s] != nil {
			continue
		}
		sub, err := in.b.nc.ChanSubscribe(s, in.msgs)
		if err != nil {
			in.b.setErr(err)
			continue
		}
		sub.SetPendingLimits(pendingMsgs, pendingBytes)
		in.subs[s] = sub
		in.gen++
	}
	in.listLocked()
	if len(subjects) == 0 {
		delete(in.want, channel)
	} else {
		in.want[channel] = subjects
	}
	var gone []string
	for _, s := range old {
		if !slices.Contains(subjects, s) {
			gone = append(gone, s)
		}
	}
	if len(gone) > 0 {
		in.retiring++
		time.AfterFunc(retireDelay, func() { in.retire(gone) })
	}
}

// retireDelay is how long a subscription no longer wanted is kept before
// retire starts; settleDelay how long after the round trip it waits.
const (
	retireDelay = 250 * time.Millisecond
	settleDelay = 100 * time.Millisecond
)

// retire unsubscribes from the subjects no channel wants any more. First
// a round trip: the NATS server has then seen every subscription made
// before. Then settleDelay, for messages it matched just before seeing
// them to arrive. If a subscription was made meanwhile, it starts over.
func (in *interest) retire(subjects []string) {
	in.mu.Lock()
	gen := in.gen
	closed := in.b.closed.Load()
	if !closed && in.b.nc.IsConnected() {
		in.b.nc.FlushTimeout(time.Second)
	}
	in.mu.Unlock()
	if closed {
		in.retired()
		return
	}
	time.AfterFunc(settleDelay, func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if !in.b.closed.Load() && in.gen != gen {
			time.AfterFunc(retireDelay, func() { in.retire(subjects) })
			return
		}
		defer in.retiredLocked()
		if in.b.closed.Load() {
			return
		}
		for _, s := range subjects {
			wanted := false
			for _, subs := range in.want {
				wanted = wanted || slices.Contains(subs, s)
			}
			if sub := in.subs[s]; sub != nil && !wanted {
				sub.Unsubscribe()
				delete(in.subs, s)
			}
		}
		in.listLocked()
	})
}

func (in *interest) retired() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.retiredLocked()
}

func (in *interest) retiredLocked() {
	in.retiring--
	in.idle.Broadcast()
}

// Subjects returns the plain subjects subscribed to, sorted, without
// their piece subjects.
func (b *Backbone) Subjects() []string {
	if l := b.in.listed.Load(); l != nil {
		return slices.Clone(*l)
	}
	return []string{}
}

// listLocked sets what Subjects returns from subs.
func (in *interest) listLocked() {
	out := make([]string, 0, len(in.subs)/2)
	for s := range in.subs {
		if _, piece := in.b.subj.unpieces(s); !piece {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	in.listed.Store(&out)
}

// Backlogged reports whether the messages NATS has handed to the backbone
// and it has yet to deliver, plain or for queue groups, passed a quarter
// of what it buffers (inQueue each, past which NATS drops them as for a
// slow consumer): the deliverer should not pause for a slow recipient
// then, or everyone else's messages would be lost.
func (b *Backbone) Backlogged() bool {
	return len(b.in.msgs) > cap(b.in.msgs)/4 || len(b.qs.msgs) > cap(b.qs.msgs)/4
}

// receive delivers the plain subscriptions' messages until close.
func (in *interest) receive() {
	defer in.b.wg.Done()
	r := newReceiver(in.b)
	sweep := time.NewTicker(r.parts.sweepEvery())
	defer sweep.Stop()
	for {
		select {
		case m := <-in.msgs:
			if in.b.isProbe(m) {
				continue
			}
			subj, _ := in.b.subj.unpieces(m.Subject)
			r.handle(subj, subj, m.Data)
		case t := <-sweep.C:
			r.parts.sweep(t, true)
		case <-in.done:
			return
		}
	}
}

// close unsubscribes from everything and stops receive, once the pending
// retire calls have run (they return at once after Close).
func (in *interest) close() {
	in.mu.Lock()
	for in.retiring > 0 {
		in.idle.Wait()
	}
	for s, sub := range in.subs {
		sub.Unsubscribe()
		delete(in.subs, s)
	}
	in.listLocked()
	in.mu.Unlock()
	close(in.done)
}

// minimal returns the subjects of set that no wildcard of set covers,
// sorted. A NATS connection gets a message once per matching
// subscription: overlapping ones would deliver twice.
func minimal(set map[string]bool) []string {
	var out []string
	for s := range set {
		covered := false
		for w := range set {
			if w != s && covers(w, s) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// covers reports whether the wildcard w ("A.B.>") matches every subject s
// matches; s is an exact subject or a wildcard of the same form.
func covers(w, s string) bool {
	base, ok := strings.CutSuffix(w, ">")
	return ok && strings.HasPrefix(s, base) && len(s) > len(base)
}

// Flush waits for a round trip to the NATS server: it then holds every
// subscription made before.
func (b *Backbone) Flush() error {
	return b.nc.FlushTimeout(5 * time.Second)
}
