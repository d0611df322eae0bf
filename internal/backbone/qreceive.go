package backbone

import (
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netcluster/netcluster/internal/wire"
)

// queueReceiver turns the queue connection's messages into deliveries to
// groups. NATS picks this server for some of a publisher's messages only,
// so gaps in the sequence numbers are normal here and not counted (the
// plain subscriptions account for losses); a queue name picks a message
// once, so nothing arrives twice. A large message's head (its first
// piece) comes on a queue subscription, once for each group NATS picked
// this server for; the other pieces come on the piece subject, which every
// server with such a group subscribes to: pieces without a head here are
// another server's and are dropped.
type queueReceiver struct {
	q     *queues
	parts assembly // large messages in pieces; a part's key is its subject
}

// Bounds of a large message: how many groups one message is delivered to
// (one head per group NATS picked this server for), and how many
// unfinished messages a receiver holds at once (one per publishing
// server).
const (
	maxPartGroups = 1 << 10
	maxParts      = 1 << 12
)

func newQueueReceiver(q *queues) *queueReceiver {
	return &queueReceiver{q: q, parts: newAssembly(q.b)}
}

func (r *queueReceiver) handle(m *nats.Msg) {
	b := r.q.b
	e, err := parseEnvelope(m.Data)
	if err != nil {
		b.st.malformed.Add(1)
		b.warn.soon(&b.st)
		return
	}
	if subj, ok := b.subj.unpieces(m.Subject); ok {
		r.piece(subj, &e)
		return
	}
	var g Group
	ok := false
	if m.Sub != nil {
		g, ok = r.q.group(m.Sub.Queue)
	}
	if !ok && e.kind == kindRequeue {
		return // published again for a group, not ours
	}
	if !ok {
		n := uint64(1)
		if e.kind == kindBatch {
			n = uint64(e.count)
		}
		b.st.lost.Add(n) // picked for a group this server no longer knows
		return
	}
	switch e.kind {
	case kindMsg:
		r.deliver(e.node, g, m.Subject, e.body)
	case kindBatch:
		rest := e.body
		for range e.count {
			n, ok := wire.FrameLen(rest)
			if !ok || n > len(rest) {
				b.st.malformed.Add(1)
				return
			}
			r.deliver(e.node, g, m.Subject, rest[:n])
			rest = rest[n:]
		}
	case kindChunk:
		r.head(m.Subject, g, &e)
	case kindRequeue:
		if e.queue == m.Sub.Queue {
			// The origin is the one the frame names: the server that
			// published it again got it from there.
			r.deliver(frameOrigin(e.body, e.node), g, m.Subject, e.body)
		}
		// else: published again for another group, which NATS picked
		// here only because the subject matches.
	}
}

// head starts a large message for g, or adds g to the one started. A
// head repeated for a group already there is a duplicate (NATS picks once
// per queue name), counted and dropped; so is one past maxPartGroups.
func (r *queueReceiver) head(subj string, g Group, e *envelope) {
	b := r.q.b
	r.parts.sweep(time.Now(), false)
	p := r.parts.parts[e.node]
	if p != nil && p.epoch == e.epoch && p.seq == e.seq && p.key == subj {
		switch {
		case slices.Contains(p.groups, g):
			b.st.duplicates.Add(1)
		case len(p.groups) >= maxPartGroups:
			b.st.lost.Add(1)
			b.warn.soon(&b.st)
		default:
			p.groups = append(p.groups, g)
		}
		return
	}
	if p != nil {
		r.parts.drop(e.node)
	}
	if e.offset != 0 {
		b.st.lost.Add(1) // a publisher that sends every piece on the subject
		return
	}
	if p = r.parts.start(e.node, e.epoch, e.seq, subj, e.total); p == nil {
		return
	}
	p.groups = []Group{g}
	r.add(e.node, p, e)
}

// piece adds a later piece to the message it continues, if this server
// got its head.
func (r *queueReceiver) piece(subj string, e *envelope) {
	r.parts.sweep(time.Now(), false)
	p := r.parts.parts[e.node]
	switch {
	case e.kind != kindChunk || p == nil:
		return // not ours
	case p.epoch != e.epoch || p.seq != e.seq || p.key != subj:
		// The publisher moved on: whatever p lacks will not come. A
		// piece of another message whose head went elsewhere is not ours.
		r.parts.drop(e.node)
		return
	}
	r.add(e.node, p, e)
}

// add adds e's piece to p, and delivers p once whole.
func (r *queueReceiver) add(node NodeID, p *part, e *envelope) {
	if !r.parts.add(node, p, e) {
		return
	}
	for _, g := range p.groups {
		r.deliver(node, g, p.key, p.buf)
	}
}

// deliver hands a frame to the server for g after checking it is one Msg
// or Call frame of the channel its subject names.
func (r *queueReceiver) deliver(node NodeID, g Group, subj string, frame []byte) {
	b := r.q.b
	if n, ok := wire.FrameLen(frame); !ok || n != len(frame) || len(frame) < wire.HeaderLen ||
		!b.subj.sameChannel(subj, channelOf(frame)) {
		b.st.malformed.Add(1)
		b.warn.soon(&b.st)
		return
	}
	b.st.queueIn.Add(1)
	b.st.bytesIn.Add(uint64(len(frame)))
	b.cfg.DeliverGroup(node, g, frame)
}

// frameOrigin returns the server a requeued Msg or Call frame names in
// its Node field (in hex, as the publisher wrote it), or def if it names
// none.
func frameOrigin(frame []byte, def NodeID) NodeID {
	f, rest, ok := wire.Split(frame)
	if !ok || len(rest) != 0 {
		return def
	}
	var v wire.MsgView
	var err error
	switch f.Type {
	case wire.TypeMsg:
		v, err = wire.ParseMsg(f.Payload)
	case wire.TypeCall:
		_, v, err = wire.ParseCall(f.Payload)
	default:
		return def
	}
	var id NodeID
	if err != nil || len(v.Node) != 2*len(id) {
		return def
	}
	if _, err := hex.Decode(id[:], v.Node); err != nil {
		return def
	}
	return id
}

// The pieces of a large message after its first are published on the
// piece subject of its subject: "~p." inserted after PREFIX.CLUSTER.
// ("~p" is no channel's token: base64url never has one character). Only
// the head goes on the subject itself, so a queue subscription gets one
// NATS message per large message; the plain subscriptions subscribe to
// the piece subjects too.
const piecesToken = "~p."

// pieces returns the piece subject of subj.
func (s subjects) pieces(subj string) string {
	return s.base + piecesToken + subj[len(s.base):]
}

// unpieces returns the subject whose piece subject subj is, and whether
// it is one.
func (s subjects) unpieces(subj string) (string, bool) {
	rest, ok := strings.CutPrefix(subj, s.base+piecesToken)
	if !ok {
		return subj, false
	}
	return s.base + rest, true
}

// laterPiece reports whether the envelope env is a piece of a large
// message other than its first.
func laterPiece(env []byte) bool {
	return len(env) >= chunkHeaderLen && env[1] == kindChunk &&
		(env[26]|env[27]|env[28]|env[29]) != 0
}

// publishPlain publishes one envelope of a plain channel: on subj, or on
// its piece subject for a piece after the first.
func (b *Backbone) publishPlain(subj string, env []byte) error {
	if laterPiece(env) {
		subj = b.subj.pieces(subj)
	}
	return b.nc.Publish(subj, env)
}

// Requeue publishes frame, a Msg or Call frame of channel with event
// event that NATS gave this server for group g and that no member here
// took, again for g only: NATS picks another server that has a member
// (this one no longer subscribes for g), and the plain subscriptions and
// other groups ignore it. It fails with ErrTooLarge for a frame that does
// not fit in one NATS message, and ErrDropped when not connected or
// without queue groups; nothing tells whether another server took it.
func (b *Backbone) Requeue(channel, event string, g Group, frame []byte) error {
	if b.qs.nc == nil || b.closed.Load() || !b.nc.IsConnected() {
		return ErrDropped
	}
	q := queueName(g)
	env := appendEnvHeader(make([]byte, 0, envHeaderLen+1+len(q)+len(frame)), kindRequeue, b.cfg.NodeID, 0, 0)
	env = append(env, byte(len(q)))
	env = append(env, q...)
	env = append(env, frame...)
	if len(env) > int(b.nc.MaxPayload()) || len(q) > 255 {
		return ErrTooLarge
	}
	if err := b.nc.Publish(b.subj.event(channel, event), env); err != nil {
		return ErrDropped
	}
	b.st.requeued.Add(1)
	return nil
}
