package netcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/netcluster/netcluster/internal/wire"
)

// Errors of requests and queue listeners.
var (
	// ErrNoResponders is returned by Request when the server knows that no
	// agent able to answer listens to the event: none on the channel, none
	// on the channels it propagates to, and the request either did not go
	// to the network or went only to the NATS backbone, where no other
	// server subscribes to its subject.
	ErrNoResponders = errors.New("netcluster: no responders")
	// ErrNotRequest is returned by Message.Reply for a message that is not
	// a request.
	ErrNotRequest = errors.New("netcluster: message is not a request")
	// ErrInvalidGroup is returned by OnQueue for a group name that is not
	// 1 to 64 letters, digits, '.', '_' or '-'.
	ErrInvalidGroup = errors.New("netcluster: invalid queue group name")
	// ErrUnsupported is returned by Request and OnQueue when the server
	// speaks a protocol version without request/reply and queue groups.
	ErrUnsupported = errors.New("netcluster: the server does not support request/reply and queue groups")
)

// pendingCall is a request waiting for its first answer.
type pendingCall struct {
	done  chan callResult // buffered: the first result only
	local bool            // delivered to this agent's own listeners, in memory
}

type callResult struct {
	msg *Message
	err error
}

// Request sends a request: an event whose data is v encoded as JSON, that
// asks for an answer, and returns the first answer, or ctx's error. The
// server routes it like Emit routes an event (to listeners, to queue
// groups, by propagation, to the network) and delivers the answers to this
// agent only. The agent's own matching listeners get it in memory, and
// may answer it.
//
// When the server knows that no one able to answer listens, Request
// returns ErrNoResponders at once. Agents on other machines are unknown to
// it: a request on a channel with propagatetonet waits for ctx (as does
// one answered by no listener). A request survives a reconnection: the
// answer is addressed to the agent's id.
func (a *Agent) Request(ctx context.Context, event string, v any) (*Message, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("netcluster: request %q: %w", event, err)
	}
	return a.request(ctx, event, data, wire.FlagJSON, false)
}

// RequestRaw is like Request, but sends data as it is, not as JSON.
func (a *Agent) RequestRaw(ctx context.Context, event string, data []byte) (*Message, error) {
	return a.request(ctx, event, data, 0, true)
}

func (a *Agent) request(ctx context.Context, event string, data []byte, flags byte, copyData bool) (*Message, error) {
	if event == "" || len(event) > wire.MaxEventLen {
		return nil, fmt.Errorf("%w: %d bytes; want 1 to %d", ErrInvalidEvent, len(event), wire.MaxEventLen)
	}
	// A handler waiting here must not stop the reader at the queue bound:
	// the answer comes through the reader.
	defer a.q.hold()()
	m := wire.Msg{Flags: flags, Channel: a.channel, Agent: a.id, Event: event, Data: data}
	a.mu.Lock()
	if a.version != 0 && a.version < wire.VersionCalls {
		a.mu.Unlock()
		return nil, fmt.Errorf("netcluster: request %q: %w (it speaks protocol version %d)", event, ErrUnsupported, a.version)
	}
	if err := a.waitRoomLocked(ctx, "request", event, wire.CallSize(&m)); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	a.nextCall++
	id := a.nextCall
	pc := &pendingCall{done: make(chan callResult, 1)}
	a.calls[id] = pc
	a.queueFrame(wire.AppendCall(a.out, id, &m))
	var local *Message
	if a.nlisteners.Load() > 0 && len(a.listeners.Match(unsafeBytes(event))) > 0 {
		if copyData {
			data = append([]byte(nil), data...)
		}
		// The Message and its call in one allocation.
		lc := &struct {
			msg Message
			c   call
		}{c: call{agent: a, id: id}}
		lc.msg = Message{
			Event: event, Data: data, JSON: flags&wire.FlagJSON != 0,
			Channel: a.channel, Agent: a.id, Local: true, call: &lc.c,
		}
		local = &lc.msg
		pc.local = true
	}
	a.mu.Unlock()
	if local != nil {
		a.q.push(false, item{msg: local})
	}
	select {
	case r := <-pc.done:
		if r.err != nil {
			return nil, fmt.Errorf("netcluster: request %q: %w", event, r.err)
		}
		return r.msg, nil
	case <-ctx.Done():
		a.mu.Lock()
		delete(a.calls, id)
		a.mu.Unlock()
		return nil, fmt.Errorf("netcluster: request %q: %w", event, ctx.Err())
	}
}

// waitRoomLocked waits while the send buffer has no room for size bytes,
// as Emit does: it returns an error if the agent is closed, gave up its
// connection, or is disconnected with a full buffer, if the message is
// larger than the server accepts, or if ctx ends. Called and returns with
// mu held.
func (a *Agent) waitRoomLocked(ctx context.Context, op, event string, size int) error {
	for {
		if a.closing {
			return ErrClosed
		}
		if size-4 > a.maxFrame {
			return fmt.Errorf("%w: %s %q is %d bytes; the server accepts at most %d", ErrTooLarge, op, event, size-4, a.maxFrame)
		}
		if a.gaveUp {
			return fmt.Errorf("%w: the connection to %s ended and WithoutReconnect is set", ErrNotConnected, a.where)
		}
		if a.outLen() == 0 || a.outLen()+size <= a.opts.bufferSize {
			return nil
		}
		if a.nc == nil {
			return fmt.Errorf("%w: %d bytes waiting for %s", ErrBufferFull, a.outLen(), a.where)
		}
		ch := a.changed.wait()
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			a.mu.Lock()
			return fmt.Errorf("netcluster: %s %q: %w", op, event, ctx.Err())
		}
		a.mu.Lock()
	}
}

// resolve ends the wait of request id with r, if it still waits. A
// NoResponders (r.err set) does not end a request that the agent's own
// listeners got: one of them may answer.
func (a *Agent) resolve(id uint64, r callResult) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	pc := a.calls[id]
	if pc == nil || r.err != nil && pc.local {
		return false
	}
	delete(a.calls, id)
	pc.done <- r
	return true
}

// failCallsLocked ends every request in flight with err. Call with mu held.
func (a *Agent) failCallsLocked(err error) {
	a.failReplaysLocked(err)
	for id, pc := range a.calls {
		pc.done <- callResult{err: err}
		delete(a.calls, id)
	}
}

// IsRequest reports whether the message is a request, which a handler may
// answer with Reply.
func (m *Message) IsRequest() bool { return m.call != nil }

// Reply answers the request m with v encoded as JSON. The answer goes to
// the requesting agent only, in whatever channel or on whatever machine it
// is; the requester takes the first answer and ignores later ones. Reply
// returns once the answer is queued for the server (waiting, bounded by
// ctx, while the send buffer is full). It returns ErrNotRequest if m is
// not a request.
func (m *Message) Reply(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("netcluster: reply to %q: %w", m.Event, err)
	}
	return m.reply(ctx, data, wire.FlagJSON)
}

// ReplyRaw is like Reply, but sends data as it is, not as JSON.
func (m *Message) ReplyRaw(ctx context.Context, data []byte) error {
	return m.reply(ctx, append([]byte(nil), data...), 0)
}

func (m *Message) reply(ctx context.Context, data []byte, flags byte) error {
	if m.call == nil || m.call.agent == nil {
		return fmt.Errorf("%w: event %q", ErrNotRequest, m.Event)
	}
	a := m.call.agent
	if m.Local {
		// The agent's own request: answered in memory.
		a.resolve(m.call.id, callResult{msg: &Message{
			Event: m.Event, Data: data, JSON: flags&wire.FlagJSON != 0,
			Channel: a.channel, Agent: a.id, Local: true,
		}})
		return nil
	}
	to := wire.Addr{Channel: m.Channel, Agent: m.Agent, Node: m.Node}
	ans := wire.Msg{Flags: flags, Channel: a.channel, Agent: a.id, Event: m.Event, Data: data}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.waitRoomLocked(ctx, "reply to", m.Event, wire.AnswerSize(&to, &ans)); err != nil {
		return err
	}
	a.queueFrame(wire.AppendAnswer(a.out, m.call.id, &to, &ans))
	return nil
}

// immediate reports whether the reader acts on a frame of type t at once
// rather than after the messages it has batched: messages (they join the
// batch) and answers to Flush and Request, which a handler may be waiting
// for, so they must not wait for its own queue to drain. Other frames keep
// stream order.
func immediate(t byte) bool {
	switch t {
	case wire.TypeMsg, wire.TypeCall, wire.TypeQueueMsg, wire.TypePong, wire.TypePing,
		wire.TypeAnswer, wire.TypeNoResponders, wire.TypeSeqMsg, wire.TypeAck:
		return true
	}
	return false
}

// readCall decodes a Call, or a QueueMsg (wrapping a Msg or a Call), into
// a Message from alloc, a request's from keep (a handler may answer it
// after it returns: borrow.go); sid is the QueueMsg's membership.
func (a *Agent) readCall(alloc, keep *recvAlloc, f wire.Frame) (m *Message, sid uint32, err error) {
	typ, p := f.Type, f.Payload
	if typ == wire.TypeQueueMsg {
		if sid, typ, p, err = wire.ParseQueueMsg(p); err != nil {
			return nil, 0, err
		}
	}
	if typ != wire.TypeCall {
		v, same := alloc.sameHeader(p) // recv_seq.go
		if !same {
			if v, err = wire.ParseMsg(p); err != nil {
				return nil, 0, err
			}
		}
		return alloc.fields(p, &v, same), sid, nil
	}
	id, v, err := wire.ParseCall(p)
	if err != nil {
		return nil, 0, err
	}
	m = keep.view(&v)
	m.call = keep.call(a, id)
	return m, sid, nil
}

// readAnswer acts on an Answer or NoResponders frame: it ends the wait of
// the request it answers. Answers to requests no longer waited for (timed
// out, or answered already) are ignored.
func (a *Agent) readAnswer(f wire.Frame) error {
	if f.Type == wire.TypeNoResponders {
		id, err := wire.ParseU64(f.Payload)
		if err != nil {
			return err
		}
		a.resolve(id, callResult{err: ErrNoResponders})
		return nil
	}
	id, _, v, err := wire.ParseAnswer(f.Payload)
	if err != nil {
		return err
	}
	m := &Message{
		Event:   string(v.Event),
		Data:    append([]byte(nil), v.Data...),
		JSON:    v.Flags&wire.FlagJSON != 0,
		Channel: string(v.Channel),
		Agent:   string(v.Agent),
		Node:    string(v.Node),
	}
	a.resolve(id, callResult{msg: m})
	return nil
}
