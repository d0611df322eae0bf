package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// bbTally counts, per member and per message number, what a set of
// handlers got.
type bbTally struct {
	mu sync.Mutex
	by map[string]map[int]int // member → number → times
}

func (q *bbTally) add(member string, k int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.by == nil {
		q.by = map[string]map[int]int{}
	}
	if q.by[member] == nil {
		q.by[member] = map[int]int{}
	}
	q.by[member][k]++
}

// total returns the messages counted, repeats included.
func (q *bbTally) total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, ks := range q.by {
		for _, c := range ks {
			n += c
		}
	}
	return n
}

// member returns how many messages member got.
func (q *bbTally) member(member string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, c := range q.by[member] {
		n += c
	}
	return n
}

// once fails the test unless each of the numbers in [from, to) was counted
// exactly once over all members.
func (q *bbTally) once(t *testing.T, what string, from, to int) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	seen := map[int]int{}
	for _, ks := range q.by {
		for k, c := range ks {
			seen[k] += c
		}
	}
	for k := from; k < to; k++ {
		if seen[k] != 1 {
			t.Fatalf("%s: message %d handled %d times in the whole system", what, k, seen[k])
		}
	}
	if n := len(seen); n != to-from {
		t.Fatalf("%s: %d distinct messages handled, want %d", what, n, to-from)
	}
}

// bbQueueInterest waits until every NATS server of nc sees, for subject,
// at least want subscriptions (plain and queue, local and routed).
func bbQueueInterest(t *testing.T, nc *natstest.Cluster, subject string, want int) {
	t.Helper()
	ntWait(t, fmt.Sprintf("interest %d in %s on every NATS server", want, subject), func() bool {
		for _, s := range nc.Servers {
			if s.GlobalAccount().Interest(subject) < want {
				return false
			}
		}
		return true
	})
}

// bbRoutedQueue waits until NATS server s holds (held) or no longer holds
// a queue subscription to subject of NATS server from: the route brings
// it, and its end, some time after from has them. (Interest cannot tell:
// at least 5 matches while 6 remain.)
func bbRoutedQueue(t *testing.T, s *natstest.Server, from, subject string, held bool) {
	t.Helper()
	ntWait(t, fmt.Sprintf("NATS server %s to hold (%v) %s's queue subscription to %s", s.Name(), held, from, subject), func() bool {
		rz, err := s.Routez(&server.RoutezOptions{SubscriptionsDetail: true})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rz.Routes {
			for _, sd := range r.SubsDetail {
				found = found || r.RemoteName == from && sd.Subject == subject && sd.Queue != ""
			}
		}
		return found == held
	})
}

// natsQueueSubs returns the queue subscriptions of the client connection
// named name on s, "SUBJECT QUEUE".
func natsQueueSubs(t *testing.T, s *natstest.Server, name string) []string {
	t.Helper()
	cz, err := s.Connz(&server.ConnzOptions{SubscriptionsDetail: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cz.Conns {
		if c.Name != name {
			continue
		}
		for _, sd := range c.SubsDetail {
			if sd.Queue != "" {
				out = append(out, sd.Subject+" "+sd.Queue)
			}
		}
	}
	return out
}

// TestBackboneQueueGroupSystemWide: one queue group with members on three
// hosts, each on its own node of a three-node NATS cluster, handles each of
// 10,000 numbered messages exactly once in the whole system, while a plain
// listener on each host gets them all; NATS spreads messages sent one at a
// time over every host, the publishing hosts' own members included; requests to a group across hosts get one answer
// each; a host whose last member leaves drops its queue subscription and
// gets no more work; large messages in pieces reach one member whole.
func TestBackboneQueueGroupSystemWide(t *testing.T) {
	t.Parallel()
	nc := natstest.RunCluster(t, 3, natstest.Options{NoJetStream: true})
	var hosts []*ntNode
	for i := range 3 {
		hosts = append(hosts, ntStart(t, bbConfig(t, []string{nc.URL(i)},
			`{"nodename": "host`+fmt.Sprint(i+1)+`", "channels": {"A": {"propagatetonet": true}}}`)))
	}
	bbConnected(t, hosts...)
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]

	// Members: one on host 1, two on host 2, one on host 3; a plain
	// listener on each host.
	var jobs, plain bbTally
	var ownPicks atomic.Int64 // messages NATS gave back to their publishing server's member
	// The messages sent one at a time (numbered from spreadBase), apart.
	const n, spreadBase, spreadN = 10_000, 20_000, 300
	var spread bbTally
	var spreadOwn atomic.Int64
	handled := make(chan struct{}, spreadN)
	memberOn := map[string]*ntNode{}
	var h3member *netcluster.Listener
	for i, h := range []*ntNode{h1, h2, h2, h3} {
		name := fmt.Sprintf("m%d", i)
		memberOn[name] = h
		a := ctlAgent(t, h.dir, "A", netcluster.WithAgentID(name))
		l, err := a.OnQueue("job", "workers", func(m *netcluster.Message) {
			var k int
			m.Decode(&k)
			// Even numbers come from host 1, odd ones from host 3; a
			// message from the member's own server has no node.
			origin := h1
			if k%2 == 1 && (k < n || k >= spreadBase) { // those from n on all come from host 1
				origin = h3
			}
			if want := origin.srv.NodeID(); origin == h && m.Node != "" || origin != h && m.Node != want {
				t.Errorf("message %d on %s: node %q, origin %s", k, name, m.Node, want)
			}
			if k >= spreadBase {
				spread.add(name, k)
				if origin == h {
					spreadOwn.Add(1)
				}
				select {
				case handled <- struct{}{}:
				default: // more than were sent: spread.once tells
				}
				return
			}
			jobs.add(name, k)
			if origin == h {
				ownPicks.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if h == h3 {
			h3member = l
		}
		a.Flush(ctlCtx(t))
	}
	for i, h := range hosts {
		name := fmt.Sprintf("plain%d", i+1)
		a := ctlAgent(t, h.dir, "A")
		if _, err := a.On("job", func(m *netcluster.Message) {
			var k int
			if m.Decode(&k); k < spreadBase {
				plain.add(name, k)
			}
		}); err != nil {
			t.Fatal(err)
		}
		a.Flush(ctlCtx(t))
	}
	const subj = "netcluster.default.A.job"
	for _, h := range hosts {
		bbSubjects(t, h, subj)
		bbGroups(t, h, subj+" A.workers.")
	}
	// Each NATS server: its client's plain and queue subscriptions, and
	// the other two servers' of each, through the routes.
	bbQueueInterest(t, nc, subj, 6)

	// 10,000 numbered messages, half emitted on host 1, half on host 3.
	e1 := ctlAgent(t, h1.dir, "A", netcluster.WithAgentID("emitter1"))
	e3 := ctlAgent(t, h3.dir, "A", netcluster.WithAgentID("emitter3"))
	ctx := ctlCtx(t)
	for k := range n {
		e := e1
		if k%2 == 1 {
			e = e3
		}
		if err := e.Emit(ctx, "job", k); err != nil {
			t.Fatal(err)
		}
	}
	bbWait(t, "every message handled and heard", 60*time.Second, func() bool {
		return jobs.total() >= n && plain.total() >= 3*n
	})
	time.Sleep(300 * time.Millisecond) // a message handled twice would show by now
	jobs.once(t, "queue group", 0, n)
	for i := range hosts {
		if got := plain.member(fmt.Sprintf("plain%d", i+1)); got != n {
			t.Fatalf("plain listener on host %d got %d of %d", i+1, got, n)
		}
	}
	// Emitted densely, these go in batch envelopes of up to 2,048 (the
	// backbone's maxBatch), and NATS picks one server per envelope
	// (docs/PROTOCOL.md, "Queue groups"): a handful of picks, so how they
	// spread over the hosts is luck.
	t.Logf("dense: handled per member: m0 (host 1) %d, m1 m2 (host 2) %d %d, m3 (host 3) %d; %d by a member on their publishing server",
		jobs.member("m0"), jobs.member("m1"), jobs.member("m2"), jobs.member("m3"), ownPicks.Load())
	for _, h := range hosts {
		if bs := h.srv.Stats().Backbone; bs.Lost != 0 || bs.Malformed != 0 {
			t.Fatalf("backbone counters %+v", bs)
		}
	}

	// The spread: spreadN messages, each emitted once the one before was
	// handled, so that each is a NATS message of its own and a pick of
	// its own among the three queue subscriptions, which every NATS server
	// holds (its own client's, and the other two's by the routes). Each
	// host then gets about a third, and a third go back to their
	// publishing server; a tenth is more than 8 standard deviations below.
	for i, s := range nc.Servers {
		for j := range nc.Servers {
			if j != i {
				bbRoutedQueue(t, s, fmt.Sprintf("n%d", j+1), subj, true)
			}
		}
	}
	pctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for k := spreadBase; k < spreadBase+spreadN; k++ {
		e := e1
		if k%2 == 1 {
			e = e3
		}
		if err := e.Emit(pctx, "job", k); err != nil {
			t.Fatal(err)
		}
		select {
		case <-handled:
		case <-pctx.Done():
			t.Fatalf("message %d not handled: %v", k, pctx.Err())
		}
	}
	time.Sleep(300 * time.Millisecond) // a message handled twice would show by now
	spread.once(t, "queue group, one at a time", spreadBase, spreadBase+spreadN)
	perHost := map[*ntNode]int{}
	for name, h := range memberOn {
		perHost[h] += spread.member(name)
	}
	t.Logf("one at a time: handled per member: m0 (host 1) %d, m1 m2 (host 2) %d %d, m3 (host 3) %d; %d by a member on their publishing server",
		spread.member("m0"), spread.member("m1"), spread.member("m2"), spread.member("m3"), spreadOwn.Load())
	for i, h := range hosts {
		if perHost[h] < spreadN/10 {
			t.Fatalf("host %d's members handled %d of %d: NATS did not spread the work over the hosts", i+1, perHost[h], spreadN)
		}
	}
	if got := spreadOwn.Load(); got < spreadN/10 {
		t.Fatalf("NATS picked the publishing server for %d of %d of its own messages", got, spreadN)
	}

	t.Run("requests", func(t *testing.T) {
		var answered bbTally
		for i, h := range hosts {
			name := fmt.Sprintf("pricer%d", i+1)
			a := ctlAgent(t, h.dir, "A", netcluster.WithAgentID(name))
			if _, err := a.OnQueue("price", "pricers", func(m *netcluster.Message) {
				var k int
				m.Decode(&k)
				answered.add(name, k)
				m.Reply(context.Background(), k)
			}); err != nil {
				t.Fatal(err)
			}
			a.Flush(ctlCtx(t))
		}
		for _, h := range hosts {
			bbGroups(t, h, subj+" A.workers.", "netcluster.default.A.price A.pricers.")
		}
		bbQueueInterest(t, nc, "netcluster.default.A.price", 3)
		req := ctlAgent(t, h2.dir, "A", netcluster.WithAgentID("asker"))
		const reqs = 300
		for k := range reqs {
			m, err := req.Request(ctlCtx(t), "price", k)
			if err != nil {
				t.Fatalf("request %d: %v", k, err)
			}
			var got int
			if m.Decode(&got); got != k {
				t.Fatalf("request %d answered %d", k, got)
			}
		}
		time.Sleep(300 * time.Millisecond)
		answered.once(t, "requests", 0, reqs)
		hostsAnswering := 0
		for i := range hosts {
			if answered.member(fmt.Sprintf("pricer%d", i+1)) > 0 {
				hostsAnswering++
			}
		}
		if hostsAnswering < 2 {
			t.Fatalf("requests answered on %d host(s) only", hostsAnswering)
		}
	})

	t.Run("member leaves", func(t *testing.T) {
		before := jobs.member("m3")
		h3member.Off()
		bbGroups(t, h3) // the pricers left with their subtest
		ntWait(t, "host 3's queue subscription gone from NATS", func() bool {
			for _, s := range natsQueueSubs(t, nc.Servers[2], "host3 queues") {
				if strings.HasPrefix(s, subj+" ") {
					return false
				}
			}
			return true
		})
		// The other servers learn of it by the route: until then they
		// may pick host 3 for a message, which its server, with no queue
		// subscription left, drops.
		bbRoutedQueue(t, nc.Servers[0], "n3", subj, false)
		bbRoutedQueue(t, nc.Servers[1], "n3", subj, false)
		bbQueueInterest(t, nc, subj, 5) // the other two queue subscriptions remain
		const more = 1000
		ctx := ctlCtx(t)
		for k := n; k < n+more; k++ {
			if err := e1.Emit(ctx, "job", k); err != nil {
				t.Fatal(err)
			}
		}
		bbWait(t, "the later messages handled", 30*time.Second, func() bool { return jobs.total() >= n+more })
		time.Sleep(300 * time.Millisecond)
		jobs.once(t, "after host 3's member left", 0, n+more)
		if got := jobs.member("m3"); got != before {
			t.Fatalf("host 3's departed member got %d more messages", got-before)
		}
	})

	t.Run("large messages", func(t *testing.T) {
		var big bbTally
		for i, h := range hosts {
			name := fmt.Sprintf("big%d", i+1)
			a := ctlAgent(t, h.dir, "A", netcluster.WithAgentID(name))
			if _, err := a.OnQueue("big", "bigs", func(m *netcluster.Message) {
				if len(m.Data) != 5<<19 {
					t.Errorf("large message of %d bytes", len(m.Data))
				}
				big.add(name, int(binary.BigEndian.Uint32(m.Data)))
			}); err != nil {
				t.Fatal(err)
			}
			a.Flush(ctlCtx(t))
		}
		_, in := ntListen(t, h2, "A", "big")
		for _, h := range []*ntNode{h1, h2} {
			bbGroups(t, h, "netcluster.default.A.big A.bigs.", subj+" A.workers.")
		}
		bbGroups(t, h3, "netcluster.default.A.big A.bigs.")
		bbQueueInterest(t, nc, "netcluster.default.A.big", 3)
		// One at a time: the plain listener's outbox (8 MiB) holds three,
		// and six at once were more than it read within the backbone's
		// wait credit for it (bbWaitBudget) under -race on a loaded
		// machine, which then dropped one for it.
		defer func() {
			if t.Failed() {
				for i, h := range hosts {
					ci, _ := h.srv.Channel("A")
					t.Logf("host %d: %d dropped on A; backbone %+v", i+1, ci.Dropped, *h.srv.Stats().Backbone)
				}
			}
		}()
		const count = 6
		data := make([]byte, 5<<19)
		ctx := ctlCtx(t)
		for k := range count {
			binary.BigEndian.PutUint32(data, uint32(k))
			if err := e1.EmitRaw(ctx, "big", data); err != nil {
				t.Fatal(err)
			}
			bbWait(t, fmt.Sprintf("large message %d handled and heard", k), 30*time.Second, func() bool {
				return big.total() >= k+1 && len(in.get()) >= k+1
			})
		}
		time.Sleep(300 * time.Millisecond)
		big.once(t, "large messages", 0, count)
		if got := len(in.get()); got != count {
			t.Fatalf("plain listener got %d large messages of %d", got, count)
		}
		for _, h := range hosts {
			if bs := h.srv.Stats().Backbone; bs.Lost != 0 {
				t.Fatalf("backbone counters %+v", bs)
			}
		}
	})
}

// TestBackboneDurableGroupsPerServer: on a durable channel, queue groups
// stay per server (the durable consumer brings every server its
// messages): each server's group handles each message once, and no queue
// subscription is made.
func TestBackboneDurableGroupsPerServer(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	var hosts []*ntNode
	for i := range 2 {
		hosts = append(hosts, ntStart(t, bbConfig(t, []string{ns.URL()},
			`{"nodename": "dhost`+fmt.Sprint(i+1)+`", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`)))
	}
	bbConnected(t, hosts...)
	var jobs bbTally
	for i, h := range hosts {
		for j := range 2 {
			name := fmt.Sprintf("h%dm%d", i+1, j)
			a := ctlAgent(t, h.dir, "D")
			if _, err := a.OnQueue("job", "workers", func(m *netcluster.Message) {
				var k int
				m.Decode(&k)
				jobs.add(name, k)
			}); err != nil {
				t.Fatal(err)
			}
			a.Flush(ctlCtx(t))
		}
	}
	for _, h := range hosts {
		ntWait(t, "durable consumer", func() bool { return len(h.srv.Stats().Backbone.Durable) == 1 })
		bbGroups(t, h)
	}
	e := ctlAgent(t, hosts[0].dir, "D")
	const n = 200
	ctx := ctlCtx(t)
	for k := range n {
		if err := e.Emit(ctx, "job", k); err != nil {
			t.Fatal(err)
		}
	}
	bbWait(t, "each server's group handles every message", 30*time.Second, func() bool { return jobs.total() >= 2*n })
	time.Sleep(200 * time.Millisecond)
	for i := range hosts {
		var host bbTally
		for j := range 2 {
			name := fmt.Sprintf("h%dm%d", i+1, j)
			jobs.mu.Lock()
			for k, c := range jobs.by[name] {
				for range c {
					host.add(name, k)
				}
			}
			jobs.mu.Unlock()
		}
		host.once(t, fmt.Sprintf("host %d's group", i+1), 0, n)
	}
}

// rawMember connects a version 2 raw agent to channel on n that joins
// queue group group for pattern as membership 1, and then reads nothing
// until the test reads it.
func rawMember(t *testing.T, n *ntNode, channel, id, group, pattern string) *ctlRaw {
	t.Helper()
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(n.dir, channel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &ctlRaw{t: t, nc: nc, rd: wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	r.write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionCalls, AgentID: id, Channel: channel})...))
	if f := r.next(); f.Type != wire.TypeWelcome {
		t.Fatalf("got %s; want welcome", wire.TypeName(f.Type))
	}
	r.write(wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: group, Pattern: pattern}))
	r.sync(1)
	return r
}

// TestBackboneQueueLeaveRequeues: a member that stops reading holds, in its
// server's outbox, messages NATS gave its server; when it leaves, the last
// member of its group there, those not yet written to it go back to NATS
// for another server's member: every message is handled exactly once,
// either by the member that left (what was written to it) or by the other.
func TestBackboneQueueLeaveRequeues(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	cfg := `{"channels": {"A": {"propagatetonet": true}}}`
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, cfg))
	bbConnected(t, h1, h2)
	var fast bbTally
	a := ctlAgent(t, h1.dir, "A")
	if _, err := a.OnQueue("job", "workers", func(m *netcluster.Message) {
		fast.add("fast", int(binary.BigEndian.Uint32(m.Data)))
	}); err != nil {
		t.Fatal(err)
	}
	a.Flush(ctlCtx(t))
	stuck := rawMember(t, h2, "A", "stuck", "workers", "job")
	const subj = "netcluster.default.A.job"
	bbGroups(t, h1, subj+" A.workers.")
	bbGroups(t, h2, subj+" A.workers.")

	// Two halves: the first fills the stuck member's socket (about 1 MiB
	// for it, far more than a socket holds), so its server's writer is
	// blocked; the second then waits in the server's outbox.
	const n = 600
	e := ctlAgent(t, h1.dir, "A", netcluster.WithAgentID("emitter"))
	ctx := ctlCtx(t)
	data := make([]byte, 8192)
	for half := range 2 {
		for k := half * n / 2; k < (half+1)*n/2; k++ {
			binary.BigEndian.PutUint32(data, uint32(k))
			if err := e.EmitRaw(ctx, "job", data); err != nil {
				t.Fatal(err)
			}
		}
		bbWait(t, "every message picked by NATS", 30*time.Second, func() bool {
			return h1.srv.Stats().Backbone.QueueIn+h2.srv.Stats().Backbone.QueueIn >= uint64((half+1)*n/2)
		})
		ntWait(t, "host 2's messages in its member's outbox", func() bool {
			ci, _ := h2.srv.Channel("A")
			return ci.QueueMsgs == h2.srv.Stats().Backbone.QueueIn
		})
		time.Sleep(50 * time.Millisecond) // the writer is in its blocked write
	}
	picked2 := h2.srv.Stats().Backbone.QueueIn
	if picked2 == 0 {
		t.Fatal("NATS picked host 2 for nothing")
	}
	ch2 := (*h2.srv.byName.Load())["A"]
	sc := ch2.member("stuck")
	if sc == nil {
		t.Fatal("the stuck member is not on host 2")
	}
	// Its writer is blocked in a write the member does not read, so what
	// its outbox holds now stays there until the member leaves.
	held := outboxQueued(sc, 1)
	if held == 0 {
		t.Fatal("the stuck member's outbox holds none of its messages: nothing to requeue")
	}
	stuck.write(wire.AppendQueueUnlisten(nil, 1))
	// Read nothing until the server has acted on it, the outbox emptied
	// of the member's messages as well as the membership gone (the first
	// comes after the second): reading would unblock its writer, which
	// would take and write what the outbox still holds.
	ntWait(t, "the member's departure", func() bool { return ch2.queues.Empty() && outboxQueued(sc, 1) == 0 })
	var got bbTally
	for _, f := range stuck.sync(2) {
		if f.Type != wire.TypeQueueMsg {
			continue
		}
		_, _, inner, err := wire.ParseQueueMsg(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		v, err := wire.ParseMsg(inner)
		if err != nil {
			t.Fatal(err)
		}
		got.add("stuck", int(binary.BigEndian.Uint32(v.Data)))
	}
	written := got.total()
	bbWait(t, "every message handled", 30*time.Second, func() bool { return fast.total()+written >= n })
	time.Sleep(200 * time.Millisecond)
	for k, c := range fast.by["fast"] {
		for range c { // a repeat shows as a count above one
			got.add("fast", k)
		}
	}
	got.once(t, "fast member and the member that left", 0, n)
	ci, _ := h2.srv.Channel("A")
	t.Logf("host 2 was picked for %d; %d were written to the member that left, %d went back to NATS (%d in its outbox when it left)", picked2, written, ci.Redispatched, held)
	if ci.Redispatched == 0 || ci.Redispatched != uint64(held) || ci.QueueLost != 0 {
		t.Fatalf("host 2: redispatched %d, queue_lost %d; want the %d its outbox held and none", ci.Redispatched, ci.QueueLost, held)
	}
}

// outboxQueued returns how many QueueMsg frames of membership sid c's
// outbox holds (not those its writer took).
func outboxQueued(c *conn, sid uint32) int {
	c.omu.Lock()
	defer c.omu.Unlock()
	n := 0
	for f := range wire.Frames(c.obuf) {
		if isQueuedFor(f, func(s uint32) bool { return s == sid }) {
			n++
		}
	}
	return n
}
