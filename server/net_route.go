package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// netSendWait bounds how long route waits for room in the Bus's send queue
// before it drops a message for the network (counted). The wait slows down
// only the emitting agent's connection.
const netSendWait = 2 * time.Second

// sendNet sends a message emitted by a local agent on ch to the network.
// raw is the Msg frame as the agent sent it.
func (s *Server) sendNet(ch *channel, raw []byte) {
	if n := s.net.Load(); n != nil {
		n.send(ch.name, raw)
	}
}

// send hands one message to the Bus, waiting up to netSendWait for room
// in its queue (the Bus wakes the wait; nothing polls), and counts it
// once: sent, or dropped (queue still full, too large, network closed).
func (n *netNode) send(channel string, raw []byte) {
	w, _ := n.waits.Get().(*sendWait)
	if w == nil {
		w = new(sendWait)
	}
	defer n.putWait(w)
	for {
		b := n.bus.Load()
		if b == nil {
			break
		}
		err := b.SendWait(w, channel, raw)
		if err == nil {
			n.st.sent.Add(1)
			return
		}
		if !errors.Is(err, netbus.ErrClosed) || n.bus.Load() == b {
			break
		}
		// Rebound meanwhile: try the new Bus, within the same wait.
	}
	n.st.sendDropped.Add(1)
	n.warnSoon()
}

// sendWait is the context of one message's wait for room in the Bus's
// send queue: it ends netSendWait after it is first asked for Done, Err
// or Deadline, which Bus.SendWait does only once the queue is full. A
// send that finds room, the common case, so sets no timer and allocates
// nothing (sendWaits are pooled in netNode.waits).
type sendWait struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

var _ context.Context = (*sendWait)(nil)

func (w *sendWait) arm() context.Context {
	w.once.Do(func() { w.ctx, w.cancel = context.WithTimeout(context.Background(), netSendWait) })
	return w.ctx
}

func (w *sendWait) Deadline() (time.Time, bool) { return w.arm().Deadline() }
func (w *sendWait) Done() <-chan struct{}       { return w.arm().Done() }
func (w *sendWait) Err() error                  { return w.arm().Err() }
func (w *sendWait) Value(any) any               { return nil }

// putWait stops w's timer, if it was armed, and returns w to the pool.
func (n *netNode) putWait(w *sendWait) {
	w.once.Do(func() {}) // after this, ctx and cancel are settled
	if w.cancel != nil {
		w.cancel()
	}
	*w = sendWait{}
	n.waits.Put(w)
}

// deliver is the Bus's DeliverFunc: it routes a message from another node
// to the local channel it was emitted on, with the origin node written in
// its Node field. Called from one goroutine at a time.
func (n *netNode) deliver(from netbus.Peer, channel string, frame []byte) {
	n.st.received.Add(1)
	if f, rest, ok := wire.Split(frame); ok && len(rest) == 0 && (f.Type == wire.TypeCall || f.Type == wire.TypeAnswer) {
		n.deliverCallFrame(from, channel, f)
		return
	}
	v, ok := parseNetMsg(frame)
	if !ok || string(v.Channel) != channel {
		n.st.malformed.Add(1)
		n.warnSoon()
		return
	}
	if from.ID != n.last || n.name == "" {
		n.last, n.name = from.ID, from.ID.String()
	}
	m := wire.Msg{
		Flags:   v.Flags,
		Channel: channel,
		Agent:   unsafeString(v.Agent),
		Node:    n.name,
		Event:   unsafeString(v.Event),
		Data:    v.Data,
	}
	ch := (*n.chans.Load())[channel]
	verdict := n.srv.netVerdict(ch, wire.MsgSize(&m), &n.st.unknownChannel, &n.st.refused)
	if n.dumpnet.Load() {
		n.srv.console.dumpNet(n.name, from, channel, &v, verdict)
	}
	if verdict != "" {
		n.warnSoon()
		return
	}
	out := wire.AppendMsg(make([]byte, 0, wire.MsgSize(&m)), &m)
	f, _, _ := wire.Split(out)
	nv, _ := wire.ParseMsg(f.Payload)
	n.st.routed.Add(1)
	ch.route(nil, out, &nv)
}

// parseNetMsg checks that frame is one whole Msg frame with an event.
func parseNetMsg(frame []byte) (wire.MsgView, bool) {
	f, rest, ok := wire.Split(frame)
	if !ok || len(rest) != 0 || f.Type != wire.TypeMsg {
		return wire.MsgView{}, false
	}
	v, err := wire.ParseMsg(f.Payload)
	if err != nil || len(v.Event) == 0 {
		return wire.MsgView{}, false
	}
	return v, true
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// netVerdict says why a message from another node cannot enter ch, whose
// frame with the origin node written in is size bytes long: the channel
// is unknown here, refuses the network, or the frame would exceed what
// agents accept. It counts the refusal in unknown or refused and returns
// its name for dumpnet; "" admits the message.
func (s *Server) netVerdict(ch *channel, size int, unknown, refused *atomic.Uint64) string {
	switch {
	case ch == nil:
		unknown.Add(1)
		return "unknown-channel"
	case !ch.settings.Load().AcceptNet:
		refused.Add(1)
		return "acceptnet-false"
	case size-wire.LenSize > s.limits.Load().maxFrame:
		refused.Add(1)
		return "larger-than-maxframe"
	}
	return ""
}
