package backbone

import "time"

// Bounds of reassembly: what one receiver holds of unfinished large
// messages, and how long one may take from its first piece by default
// (Config.ReassemblyLimit).
const (
	maxReassembly   = 64 << 20
	reassemblyLimit = 30 * time.Second
)

// assembly holds the large messages one receiver is putting together from
// their pieces, at most one per publishing server (a publisher sends the
// pieces of a message back to back): at most maxReassembly bytes in all,
// and each for limit after its first piece. Past that a message is
// dropped, counted lost and expired: its publisher stopped (died, lost its
// connection) or never meant to finish it, and it would otherwise hold its
// memory for ever. The plain receiver and the queue receiver share it. It
// is used by one goroutine at a time.
type assembly struct {
	b     *Backbone
	parts map[NodeID]*part
	held  int // bytes reserved by parts
	limit time.Duration
	swept time.Time // when parts was last swept of expired messages
}

// part is a large message in pieces.
type part struct {
	epoch  uint32
	seq    uint64
	key    string  // the sequence key (plain), or the subject (groups)
	groups []Group // groups only: the groups it goes to, one delivery each
	buf    []byte  // the pieces so far; its capacity is the whole frame
	since  time.Time
	// back (durable consumers): its last piece reached no one and was
	// sent back to JetStream; since is when it was, or when the
	// consumer started again (resume), not the first piece's time.
	back bool
}

func newAssembly(b *Backbone) assembly {
	limit := b.cfg.ReassemblyLimit
	if limit <= 0 {
		limit = reassemblyLimit
	}
	return assembly{b: b, parts: make(map[NodeID]*part), limit: limit}
}

// sweepEvery is how often a receiver's loop looks for expired messages
// (sweep), at most once a second, so that one finds them soon after limit
// even when nothing else arrives.
func (a *assembly) sweepEvery() time.Duration {
	return min(time.Second, max(a.limit/4, time.Millisecond))
}

// start begins node's message: total bytes from its first piece on. It
// returns nil, counted as too large, when total exceeds what one message
// or the receiver may hold (after a sweep, since expired messages may hold
// the room).
func (a *assembly) start(node NodeID, epoch uint32, seq uint64, key string, total uint32) *part {
	b := a.b
	if a.held+int(total) > maxReassembly || len(a.parts) >= maxParts {
		a.sweep(time.Now(), true)
	}
	if int(total) > b.maxReassembled() || a.held+int(total) > maxReassembly || len(a.parts) >= maxParts {
		b.st.tooLarge.Add(1)
		b.warn.soon(&b.st)
		return nil
	}
	p := &part{epoch: epoch, seq: seq, key: key, buf: make([]byte, 0, total), since: time.Now()}
	a.parts[node] = p
	a.reserve(int(total))
	return p
}

// add appends e's piece to p, node's message, and reports whether p is
// then whole (and no longer held). A piece already there is ignored; one
// after a missing piece, or past limit, drops p.
func (a *assembly) add(node NodeID, p *part, e *envelope) (whole bool) {
	switch {
	case int(e.offset) < len(p.buf):
		return false // a duplicate piece
	case time.Since(p.since) > a.limit:
		a.expire(node)
		return false
	case int(e.offset) > len(p.buf):
		a.drop(node)
		return false
	}
	p.buf = append(p.buf, e.body...)
	if len(p.buf) < cap(p.buf) {
		return false
	}
	delete(a.parts, node)
	a.reserve(-cap(p.buf))
	return true
}

// drop discards node's unfinished message, lost (once per group it was
// for, once without groups).
func (a *assembly) drop(node NodeID) {
	p := a.parts[node]
	delete(a.parts, node)
	a.reserve(-cap(p.buf))
	a.b.st.lost.Add(uint64(max(1, len(p.groups))))
	a.b.warn.soon(&a.b.st)
}

// expire drops node's message, unfinished past limit.
func (a *assembly) expire(node NodeID) {
	a.b.st.expired.Add(1)
	a.drop(node)
}

// sweep drops the messages unfinished limit after their first piece,
// counted as expired. It looks at most once a second, unless now.
func (a *assembly) sweep(t time.Time, now bool) {
	if len(a.parts) == 0 || !now && t.Sub(a.swept) < time.Second {
		return
	}
	a.swept = t
	for node, p := range a.parts {
		if t.Sub(p.since) > a.limit {
			a.expire(node)
		}
	}
}

// resume restarts the reassembly limit of the messages whose last piece
// was sent back (part.back), at now: a durable consumer starts again,
// with a listener, and JetStream brings that piece first. The pieces
// before it were acknowledged when they came and do not come again, so
// the limit is not counted from the first (the listener may have been
// away for longer than it).
func (a *assembly) resume(now time.Time) {
	for _, p := range a.parts {
		if p.back {
			p.since = now
		}
	}
}

// reserve counts n more bytes held (n < 0: given back).
func (a *assembly) reserve(n int) {
	a.held += n
	a.b.st.reassembling.Add(int64(n))
}
