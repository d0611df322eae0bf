package server

import (
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/netcluster/netcluster/internal/backbone"
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// deliver is the backbone's DeliverFunc: it routes messages from another
// server to the local channel they were emitted on, with the origin node
// in their Node field, as netNode.deliver does for the UDP network.
// Called from several goroutines. A recipient whose outbox is nearly full
// pauses the calling goroutine as a local sender is paused (waitRoom), so
// a burst from NATS waits in NATS's client buffers instead of being
// dropped. The frames of one call (a batch from one publisher) share
// their pooled state, their channel's lookup and, mostly, the start of
// their payload (channel, agent and node), compared instead of decoded;
// consecutive frames of one stream and event are routed as one run
// (backbone_run.go); frames the backbone found to be one stream's (s) are
// one run, not walked again. It returns how many bytes of frames, from the
// start, end with a frame that reached a local agent (DeliverFunc): a
// durable consumer sends back what follows if no one listens any more.
func (n *bbNode) deliver(node backbone.NodeID, frames []byte, s backbone.Stream) (heard int) {
	// The view and the buffer come from a pool: routing keeps neither
	// past the call, but the compiler cannot tell, and a view on the
	// heap per message was 13 % of the receiving server's CPU in S9.
	sc, _ := n.scratch.Get().(*bbScratch)
	if sc == nil {
		sc = new(bbScratch)
	}
	defer n.putScratch(sc)
	hex.Encode(sc.name[:], node[:])
	if s.Frames > 1 {
		if ok, heard := n.deliverStream(node, frames, s, sc); ok {
			return heard
		}
	}
	all := frames
	var r run
	k := 0
	for len(frames) > 0 {
		at := len(all) - len(frames)
		f, rest, ok := wire.Split(frames)
		if !ok {
			n.st.malformed.Add(1)
			break
		}
		frames = rest
		k++
		if r.k > 0 && sc.extends(f) {
			r.k++
			r.end = at + len(f.Raw)
			r.biggest = max(r.biggest, len(f.Raw))
			continue
		}
		if h := n.flushRun(node, all, &r, sc); h > 0 {
			heard = h
		}
		if f.Type == wire.TypeCall || f.Type == wire.TypeAnswer {
			// Never from a durable consumer (no Call is stored).
			n.deliverCallFrame(node, f)
			heard = at + len(f.Raw)
			continue
		}
		runs, reached := n.deliverMsg(node, sc, f)
		if runs {
			r = run{at: at, end: at + len(f.Raw), k: 1, head: len(f.Raw) - len(sc.v.Data), biggest: len(f.Raw)}
		} else if reached > 0 {
			heard = at + len(f.Raw)
		}
	}
	if h := n.flushRun(node, all, &r, sc); h > 0 {
		heard = h
	}
	sc.wake()
	n.st.received.Add(uint64(k))
	return heard
}

// deliverStream routes the frames of a Stream as one run if its first
// frame can start one (deliverMsg), and reports whether it did, and
// deliver's heard (flushRun); if not, having routed nothing, the caller
// walks them.
func (n *bbNode) deliverStream(node backbone.NodeID, frames []byte, s backbone.Stream, sc *bbScratch) (ok bool, heard int) {
	f, _, ok := wire.Split(frames)
	if !ok || f.Type != wire.TypeMsg || !sc.parse(f) || string(sc.v.Node) != string(sc.name[:]) {
		return false, 0
	}
	r := run{at: 0, end: len(frames), k: s.Frames, head: len(f.Raw) - len(sc.v.Data), biggest: s.Biggest}
	heard = n.flushRun(node, frames, &r, sc)
	sc.wake()
	n.st.received.Add(uint64(s.Frames))
	return true, heard
}

// deliverMsg routes one Msg frame f of deliver's call, and returns how
// many recipients it reached (route); or, if it can start a run (its Node
// field the publishing server's), parses it into sc.v and reports runs:
// the caller routes it with the frames that continue it.
func (n *bbNode) deliverMsg(node backbone.NodeID, sc *bbScratch, f wire.Frame) (runs bool, reached int) {
	if !sc.parse(f) {
		n.st.malformed.Add(1)
		return false, 0
	}
	if string(sc.v.Node) == string(sc.name[:]) {
		// The publishing server wrote its node id in (backbone's
		// appendFrame): the frame goes to the outboxes as it came.
		return true, 0
	}
	// An older publisher's frame, its Node empty (or anything but the
	// envelope's node): written again with the node, in the pooled
	// buffer, since every outbox copies the frame.
	v := &sc.v
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: unsafeString(v.Channel),
		Agent:   unsafeString(v.Agent),
		Node:    unsafeString(sc.name[:]),
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	out := wire.AppendMsg(sc.buf[:0], &m)
	sc.v = msgView(out, &m)
	sc.origin = nil // the view is no longer in a frame of the call
	reached = n.route(node, out, sc)
	if cap(out) <= maxScratch {
		sc.buf = out
	}
	return false, reached
}

// putScratch returns sc to the pool, holding no message.
func (n *bbNode) putScratch(sc *bbScratch) {
	sc.v = wire.MsgView{}
	sc.origin, sc.ch = nil, nil
	n.scratch.Put(sc)
}

// wake wakes the writers of the recipients deliver queued frames for: once
// per batch, so that a batch from NATS is written to an agent in one go
// rather than its first frame alone and then the rest.
func (sc *bbScratch) wake() {
	for i, c := range sc.wakes {
		c.signal()
		sc.wakes[i] = nil
	}
	sc.wakes = sc.wakes[:0]
}

// bbScratch is deliver's pooled state: a message's view, the buffer a
// frame is written again in, and what the frames of one call share.
type bbScratch struct {
	v    wire.MsgView
	fv   wire.MsgView // a frame's view while a run is routed frame by frame
	buf  []byte
	name [16]byte // the origin node in hex

	// origin is the payload of the last frame parsed up to its event
	// (flags excluded): channel, agent and node, each after its length.
	origin []byte
	// ch is the channel of the last frame routed, as the channel map
	// had it.
	ch *channel
	// wakes are the recipients whose writers wait for the end of the
	// batch (delivery.wakes).
	wakes []*conn
}

// parse decodes the Msg frame f into sc.v as parseNetMsg does. A frame
// whose channel, agent and node are those of the last one parsed (a
// stream from one agent) is checked by comparing those bytes, and its view
// keeps the last one's (equal, and valid as long as the call's frames).
func (sc *bbScratch) parse(f wire.Frame) bool {
	p := f.Payload
	if at := 1 + len(sc.origin); f.Type == wire.TypeMsg && sc.origin != nil && len(p) >= at+2 && string(p[1:at]) == string(sc.origin) {
		ev := at + 2 + int(binary.BigEndian.Uint16(p[at:]))
		if ev <= len(p) && ev > at+2 {
			sc.v.Flags, sc.v.Event, sc.v.Data = p[0], p[at+2:ev], p[ev:]
			return true
		}
		sc.origin, sc.v = nil, wire.MsgView{}
		return false
	}
	var ok bool
	sc.v, ok = parseNetMsg(f.Raw)
	sc.origin = nil
	if ok {
		v := &sc.v
		sc.origin = p[1 : 4+len(v.Channel)+len(v.Agent)+len(v.Node)]
	}
	return ok
}

// route admits a Msg frame from node (its Node field written, its view
// in sc.v) to the local channel it names and routes it; then it waits for
// room in a recipient's outbox that is nearly full. It returns how many
// recipients it reached (delivery.reached).
func (n *bbNode) route(node backbone.NodeID, frame []byte, sc *bbScratch) (reached int) {
	v := &sc.v
	ch := sc.ch
	if ch == nil || ch.name != unsafeString(v.Channel) {
		ch = (*n.chans.Load())[unsafeString(v.Channel)]
		sc.ch = ch
	}
	verdict := n.srv.netVerdict(ch, len(frame), &n.st.unknownChannel, &n.st.refused)
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(string(v.Node), netbus.Peer{ID: netbus.NodeID(node), Name: "nats"}, string(v.Channel), v, verdict)
	}
	if verdict != "" {
		return 0
	}
	n.st.routed.Add(1)
	d := delivery{raw: frame, v: v, netGroups: n.srv.natsGroups(ch.settings.Load()), patient: true, wakes: &sc.wakes}
	ch.routeDelivery(nil, &d)
	if d.full != nil {
		sc.wake() // the writer the wait is for, among others
		n.srv.waitRoom(d.full, false)
	}
	return d.reached
}

// maxScratch bounds the frames deliver's pooled buffers keep.
const maxScratch = 64 << 10

// msgView is the view of frame, which wire.AppendMsg made from m, without
// parsing it again.
func msgView(frame []byte, m *wire.Msg) wire.MsgView {
	p := frame[wire.HeaderLen:]
	at := 2 // flags, channel's length
	v := wire.MsgView{Flags: m.Flags}
	v.Channel, at = p[at:at+len(m.Channel)], at+len(m.Channel)+1
	v.Agent, at = p[at:at+len(m.Agent)], at+len(m.Agent)+1
	v.Node, at = p[at:at+len(m.Node)], at+len(m.Node)+2
	v.Event, at = p[at:at+len(m.Event)], at+len(m.Event)
	v.Data = p[at:]
	return v
}

// bbStallBudget bounds the pauses for one recipient that end without its
// writer making progress, for the backbone: longer than a local sender's
// stallBudget, since what arrives from NATS has no sender to slow down and
// would be lost. bbWaitBudget bounds all the backbone's pauses for one
// recipient, progress or not, as a credit that refills by 1/stallRefill of
// the time that passes: one goroutine delivers everything NATS brings but
// durable channels, and a listener that reads slowly but steadily would
// otherwise pace it, and everyone else, to its own speed.
const (
	bbStallBudget = time.Second
	bbWaitBudget  = time.Second
)

// waitRoom pauses a goroutine delivering from the network while r's outbox
// is more than three quarters full, or for a run (backbone_run.go) holds
// more than bbWaitAt (limits.waitAt), until r's writer takes it or writes
// a chunk of it. Waits that end without progress (stallMax each) add up,
// and count against a local sender's stallBudget too; once bbStallBudget
// is spent, r is not waited for until its writer makes progress. Every pause, in vain or not, costs
// r's credit (bbWaitBudget); once it is spent r is not waited for until it
// refills. Nor is anyone while the backbone's backlog passes a quarter of
// what it buffers. What does not fit then is dropped as configured
// (slowconsumer) and counted.
func (s *Server) waitRoom(r *conn, run bool) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	bb := s.bb.Load()
	for {
		r.omu.Lock()
		now := time.Now()
		credit := r.bbCredit.refill(now, bbWaitBudget)
		if r.closing || r.stalls >= bbStallBudget || credit <= 0 || r.queuedLocked() <= s.limits.Load().waitAt(run) {
			r.omu.Unlock()
			return
		}
		if bb != nil && bb.b.Backlogged() {
			r.omu.Unlock()
			return
		}
		if r.room == nil {
			r.room = make(chan struct{})
		}
		room, at := r.room, r.progress.Load()
		r.omu.Unlock()
		wait := min(stallMax, credit)
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		timedOut := false
		select {
		case <-room:
		case <-r.done:
			return
		case <-t.C:
			timedOut = true
		}
		r.omu.Lock()
		r.bbCredit.left -= time.Since(now)
		if timedOut && r.progress.Load() == at { // in vain: the agent read nothing
			r.stalls += stallMax
			r.stalled = r.stalls >= stallBudget
		}
		r.omu.Unlock()
	}
}

// waitAt is what waitRoom waits for r's outbox to be back to: three
// quarters of outbuffer, or for a run runWaitAt (conn_outbox.go).
func (l *limits) waitAt(run bool) int {
	if run {
		return l.runWaitAt()
	}
	return l.outBuffer / 4 * 3
}

// backboneStats returns the backbone's figures, nil without one.
func (s *Server) backboneStats() *BackboneStats {
	n := s.bb.Load()
	if n == nil {
		return nil
	}
	st := n.b.Stats()
	out := &BackboneStats{
		State: st.State, URL: st.URL, LastError: st.LastError, Reconnects: st.Reconnects,
		MsgsOut: st.MsgsOut, BytesOut: st.BytesOut, MsgsIn: st.MsgsIn, BytesIn: st.BytesIn,
		Buffered: st.Buffered, Dropped: st.Dropped, Lost: st.Lost + st.TooLarge, Duplicates: st.Duplicates,
		Malformed: st.Malformed + n.st.malformed.Load(), Routed: n.st.routed.Load(),
		Unknown: n.st.unknownChannel.Load(), Refused: n.st.refused.Load(),
		Subjects: st.Subjects, Durable: st.Durable, QueueIn: st.QueueIn, Requeued: st.Requeued, Groups: st.Groups,
	}
	if out.Subjects == nil {
		out.Subjects = []string{}
	}
	if out.Durable == nil {
		out.Durable = []string{}
	}
	return out
}
