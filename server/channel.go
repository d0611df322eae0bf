package server

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/router"
)

// channel is one configured channel: its socket, its agents and the index
// of what they listen to.
type channel struct {
	srv  *Server
	name string
	path string       // socket path, "" with NoListen
	ln   net.Listener // nil with NoListen
	// passed: ln came from Config.Listeners; reloads leave it alone.
	passed bool

	// settings holds the channel's flags and propagation targets; a reload
	// replaces it, and routing reads it without locking.
	settings atomic.Pointer[settings]

	// index maps the channel's agents to their listener patterns.
	index *router.Index[*conn]
	// queues holds the channel's queue groups.
	queues *qgroup.Set[*conn]
	// fullGen changes whenever one of its agents' outboxes stops being
	// marked full, or is marked otherwise (clearFull): a sender's agents
	// known full stay full while it does not (dropbatch.go). It moves just
	// after the mark: a sender that read it in between may drop one more
	// message for an outbox its writer had just taken, as a sender racing
	// that take would anyway.
	fullGen atomic.Uint64

	mu     sync.Mutex
	conns  map[*conn]struct{}
	nconns int              // connections held, handshakes included; under srv.liveMu
	ids    map[string]*conn // the newest connection of each agent id
	closed bool             // no new members (removed by a reload, or server closing)

	acks ackSet // its agents a round of acknowledgements may wait for (acks_set.go)

	stats channelStats
}

// settings is an immutable snapshot of a channel's configuration.
type settings struct {
	config.Channel
	targets []*channel // other channels this one propagates to
}

// channelStats are a channel's counters.
type channelStats struct {
	msgsIn   atomic.Uint64 // messages emitted on this channel
	bytesIn  atomic.Uint64
	msgsOut  atomic.Uint64 // deliveries to this channel's agents
	bytesOut atomic.Uint64
	dropped  atomic.Uint64 // deliveries dropped for slow consumers
	slow     atomic.Uint64 // slow consumers disconnected
	refused  atomic.Uint64 // connections refused by a connection limit
	frames   atomic.Uint64 // agents disconnected for a frame past partialframes or its deadline

	requests       atomic.Uint64 // requests (Calls) emitted on this channel
	replies        atomic.Uint64 // answers sent by this channel's agents
	repliesDropped atomic.Uint64 // of those, dropped: the requester was gone
	noResponders   atomic.Uint64 // requests answered with NoResponders
	queueMsgs      atomic.Uint64 // messages given to queue group members
	redispatched   atomic.Uint64 // queue group messages given to another member after one left
	queueLost      atomic.Uint64 // queue group messages with no member left to take them

	streamEnds        atomic.Uint64 // StreamEnd notices queued for its agents (streams.go)
	streamEndsDropped atomic.Uint64 // StreamEnds not sent: past the outbox bound, or the sender uid's budget (streams_fanout.go)
	watchesEarly      atomic.Uint64 // Watch entries answered within the grace: too many held (streams_watch.go)
}

func newChannel(s *Server, name string) *channel {
	return &channel{
		srv:    s,
		name:   name,
		index:  router.NewIndex[*conn](router.WithOnChange(s.interestChanged)),
		queues: qgroup.New[*conn](),
		conns:  make(map[*conn]struct{}),
		ids:    make(map[string]*conn),
	}
}

// acceptLoop accepts agents until ln is closed.
func (ch *channel) acceptLoop(ln net.Listener) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and retry,
			// as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			ch.srv.log.Warn("accept failed", "channel", ch.name, "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ch.serve(nc)
	}
}

// serve starts serving one accepted connection.
func (ch *channel) serve(nc net.Conn) {
	c := newConn(ch, nc)
	s := ch.srv
	s.liveMu.Lock()
	refusal := s.admitLocked(c)
	s.live[c] = struct{}{}
	s.liveMu.Unlock()
	s.conns.Add(1)
	go func() {
		if refusal != nil {
			c.refuseConn(refusal)
		} else if c.run() {
			return // parked: the reader resumed later ends it (resume)
		}
		ch.ended(c, refusal == nil)
	}()
}

// ended forgets a connection once it has ended; admitted: it was not
// refused for a limit.
func (ch *channel) ended(c *conn, admitted bool) {
	s := ch.srv
	s.liveMu.Lock()
	delete(s.live, c)
	if admitted {
		s.releaseLocked(c)
	}
	s.liveMu.Unlock()
	s.conns.Done()
}

// join adds c to the channel's members; false if the channel is closed.
// An agent reconnecting with the id of a member whose connection the server
// has not yet seen fail replaces that member.
func (ch *channel) join(c *conn) (replaced *conn, ok bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return nil, false
	}
	for o := range ch.conns {
		if o.id == c.id {
			replaced = o
			break
		}
	}
	ch.conns[c] = struct{}{}
	ch.ids[c.id] = c
	ch.srv.lastJoin.Store(time.Now().UnixNano()) // acks.go
	return replaced, true
}

// leave removes c from the channel and from its index.
func (ch *channel) leave(c *conn) {
	ch.mu.Lock()
	delete(ch.conns, c)
	if ch.ids[c.id] == c {
		delete(ch.ids, c.id)
	}
	ch.mu.Unlock()
	ch.index.RemoveAll(c)
	c.leaveQueues()
}

// members returns the channel's connections.
func (ch *channel) members() []*conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*conn, 0, len(ch.conns))
	for c := range ch.conns {
		out = append(out, c)
	}
	return out
}

// anyMember reports whether f holds for one of the channel's connections,
// asking no more once it does; f runs under ch.mu (without the copy
// members makes, for the durable consumer's check of each message).
func (ch *channel) anyMember(f func(*conn) bool) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for c := range ch.conns {
		if f(c) {
			return true
		}
	}
	return false
}

// member returns the connection of the agent with the given id.
func (ch *channel) member(id string) *conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for c := range ch.conns {
		if c.id == id {
			return c
		}
	}
	return nil
}

// agent returns the connection of the agent with the given id, nil if it
// is not connected.
func (ch *channel) agent(id string) *conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.ids[id]
}

// closeListener stops accepting (removing the socket file) and refuses new
// members.
func (ch *channel) closeListener() {
	ch.mu.Lock()
	ch.closed = true
	ch.mu.Unlock()
	if ch.ln != nil {
		ch.ln.Close()
	}
}
