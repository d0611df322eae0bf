package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// The tests of members that stall, leave or die: what the server had
// queued for a member and not written goes to another member; what it had
// written is the member's. Each test accounts for every message.

// qTally records which member handled which message number.
type qTally struct {
	mu  sync.Mutex
	by  map[int]string
	dup string
	n   map[string]int
}

func newQTally() *qTally { return &qTally{by: map[int]string{}, n: map[string]int{}} }

func (q *qTally) add(member string, i int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if prev, ok := q.by[i]; ok && q.dup == "" {
		q.dup = fmt.Sprintf("message %d handled by %s and %s", i, prev, member)
	}
	q.by[i] = member
	q.n[member]++
}

func (q *qTally) count(member string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n[member]
}

func (q *qTally) total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.by)
}

// member connects an agent on A that is a member of group g for "job".
func (q *qTally) member(t *testing.T, dir, name string) *netcluster.Agent {
	t.Helper()
	a := ctlAgent(t, dir, "A", netcluster.WithAgentID(name))
	if _, err := a.OnQueue("job", "g", func(m *netcluster.Message) {
		i, err := strconv.Atoi(strings.Fields(string(m.Data))[0])
		if err != nil {
			t.Error(err)
		}
		q.add(name, i)
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	return a
}

// emitJobs emits n "job" events numbered 0…n-1, padded to about size bytes.
func emitJobs(t *testing.T, a *netcluster.Agent, n int) {
	t.Helper()
	for i := range n {
		if err := a.EmitRaw(ctlCtx(t), "job", fmt.Appendf(nil, "%d %s", i, strings.Repeat(" ", 80))); err != nil {
			t.Error(err)
			return
		}
	}
}

// counters returns channel A's counters and each agent's queue messages.
func counters(s *Server) (ChannelCounters, map[string]uint64) {
	ci, _ := s.Channel("A")
	per := map[string]uint64{}
	for _, a := range ci.Agents {
		per[a.ID] = a.QueueMsgs
	}
	return ci.ChannelCounters, per
}

// jobNumber decodes the number of a job frame (Msg or QueueMsg wrapping one).
func jobNumber(t *testing.T, f wire.Frame) int {
	t.Helper()
	p := f.Payload
	if f.Type == wire.TypeQueueMsg {
		_, _, p, _ = wire.ParseQueueMsg(p)
	}
	v, err := wire.ParseMsg(p)
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(strings.Fields(string(v.Data))[0])
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestQueueStalledMember: a member that never reads gets what fits in its
// socket and outbox, the others get the rest; once it is disconnected,
// what was queued for it and not written goes to the others. Every message
// is handled once or was written to the stalled member.
func TestQueueStalledMember(t *testing.T) {
	t.Parallel()
	s, dir := ctlServer(t, `{"outbuffer": 65536, "channels": {"A": {}}}`)
	const n = 10_000
	q := newQTally()
	stalled := qDialRaw(t, dir, "A", "stalled", wire.VersionCalls)
	stalled.write(wire.AppendQueueListen(nil, wire.QueueListen{SID: 7, Group: "g", Pattern: "job"}))
	stalled.sync(1)
	q.member(t, dir, "m1")
	q.member(t, dir, "m2")
	emitJobs(t, ctlAgent(t, dir, "A"), n)

	// The others take everything the stalled member was not given.
	waitUntil(t, "the others handle the rest", func() bool {
		_, per := counters(s)
		return q.total() == n-int(per["stalled"])
	})
	_, per := counters(s)
	if per["stalled"] == 0 {
		t.Fatal("the stalled member got nothing: the test proves nothing")
	}

	// Disconnect it: the server reads EOF, gives up writing after its
	// linger, and hands what it had not written to the others.
	stalled.nc.(*net.UnixConn).CloseWrite()
	// It is gone from the channel at once; its writer gets lingerTimeout
	// before the server closes the connection and hands the rest on.
	// Reading now would let the writer finish instead.
	waitUntil(t, "its messages go to the others", func() bool {
		cc, _ := counters(s)
		return cc.Redispatched > 0
	})
	// What the socket holds was written to it: read it all.
	var written []int
	stalled.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := stalled.rd.Next()
		if err != nil {
			// The write the server cut may end in part of a frame: that
			// frame was not written whole, so it went to another member.
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("reading the stalled member's socket: %v", err)
			}
			break
		}
		if f.Type == wire.TypeQueueMsg {
			written = append(written, jobNumber(t, f))
		}
	}
	cc, _ := counters(s)
	waitUntil(t, "every message handled or written", func() bool { return q.total()+len(written) == n })
	for _, i := range written {
		if m, ok := q.by[i]; ok {
			t.Fatalf("message %d written to the stalled member and handled by %s", i, m)
		}
	}
	if q.dup != "" {
		t.Fatal(q.dup)
	}
	if cc.Redispatched == 0 || cc.QueueLost != 0 {
		t.Fatalf("redispatched %d, lost %d (%d written to the stalled member): want some redispatched, none lost", cc.Redispatched, cc.QueueLost, len(written))
	}
	t.Logf("stalled member: %d written to it, %d redispatched; the others: %d, %d", len(written), cc.Redispatched, q.count("m1"), q.count("m2"))
}

// checkLeft checks the accounting after member gone left mid-stream:
// everything not written to it was handled by the others, exactly once,
// and it handled only what was written to it.
func checkLeft(t *testing.T, s *Server, q *qTally, gone string, n int) {
	t.Helper()
	waitUntil(t, gone+" is gone", func() bool {
		_, per := counters(s)
		_, there := per[gone]
		return !there
	})
	var cc ChannelCounters
	var survivors uint64
	waitUntil(t, "the others handle what they were given", func() bool {
		var per map[string]uint64
		cc, per = counters(s)
		survivors = 0
		for _, c := range per {
			survivors += c
		}
		return q.total()-q.count(gone) == int(survivors) && cc.QueueMsgs == uint64(n)+cc.Redispatched
	})
	writtenToGone := int(cc.QueueMsgs - survivors - cc.Redispatched)
	if q.dup != "" {
		t.Fatal(q.dup)
	}
	if cc.QueueLost != 0 {
		t.Fatalf("%d messages lost with no member", cc.QueueLost)
	}
	if got := q.total() - q.count(gone); got != n-writtenToGone {
		t.Fatalf("the others handled %d; %d of %d were written to %s, so want %d", got, writtenToGone, n, gone, n-writtenToGone)
	}
	if q.count(gone) > writtenToGone {
		t.Fatalf("%s handled %d, more than the %d written to it", gone, q.count(gone), writtenToGone)
	}
	t.Logf("%s: %d written to it, %d handled by it, %d redispatched; lost with it: %d",
		gone, writtenToGone, q.count(gone), cc.Redispatched, writtenToGone-q.count(gone))
}

// TestQueueMemberClosed: a member that closes mid-stream.
func TestQueueMemberClosed(t *testing.T) {
	t.Parallel()
	s, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	const n = 10_000
	q := newQTally()
	gone := q.member(t, dir, "gone")
	q.member(t, dir, "m1")
	q.member(t, dir, "m2")
	emitter := ctlAgent(t, dir, "A")
	done := make(chan struct{})
	go func() {
		defer close(done)
		emitJobs(t, emitter, n)
	}()
	waitUntil(t, "the member has work", func() bool { return q.count("gone") >= 300 })
	gone.Close(ctlCtx(t))
	<-done
	checkLeft(t, s, q, "gone", n)
}

// TestQueueMemberKilled: a member in another process, killed with
// SIGKILL mid-stream.
func TestQueueMemberKilled(t *testing.T) {
	t.Parallel()
	s, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	const n = 10_000
	q := newQTally()
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueueMemberChild$")
	cmd.Env = append(os.Environ(), "NC_QUEUE_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child: %q, %v", lines.Text(), lines.Err())
	}
	childDone := make(chan struct{})
	go func() {
		defer close(childDone)
		for lines.Scan() {
			i, err := strconv.Atoi(lines.Text())
			if err != nil {
				t.Errorf("child said %q", lines.Text())
				return
			}
			q.add("child", i)
		}
	}()
	q.member(t, dir, "m1")
	q.member(t, dir, "m2")
	emitter := ctlAgent(t, dir, "A")
	done := make(chan struct{})
	go func() {
		defer close(done)
		emitJobs(t, emitter, n)
	}()
	waitUntil(t, "the child has work", func() bool { return q.count("child") >= 300 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-childDone
	<-done
	checkLeft(t, s, q, "child", n)
}

// TestQueueMemberChild is the member process of TestQueueMemberKilled: it
// prints the number of every job it handles, until it is killed.
func TestQueueMemberChild(t *testing.T) {
	dir := os.Getenv("NC_QUEUE_CHILD_DIR")
	if dir == "" {
		return // not the child
	}
	a := ctlAgent(t, dir, "A", netcluster.WithAgentID("child"))
	if _, err := a.OnQueue("job", "g", func(m *netcluster.Message) {
		i, _ := strconv.Atoi(strings.Fields(string(m.Data))[0])
		// One write per message: what is printed was handled.
		os.Stdout.Write(strconv.AppendInt(nil, int64(i), 10))
		os.Stdout.Write([]byte("\n"))
		time.Sleep(20 * time.Microsecond)
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	os.Stdout.Write([]byte("ready\n"))
	time.Sleep(time.Minute) // until killed
}

// TestCallsCounted: requests, answers, answers to a requester that left
// (dropped and counted) and no-responders are counted per channel; groups
// and memberships are described.
func TestCallsCounted(t *testing.T) {
	t.Parallel()
	s, dir := ctlServer(t, `{"channels": {"A": {"propagatetochannels": "B"}, "B": {}}}`)
	resp := ctlAgent(t, dir, "B", netcluster.WithAgentID("resp"))
	gone := make(chan struct{})
	if _, err := resp.OnQueue("ask", "workers", func(m *netcluster.Message) {
		if m.Data[0] == 'l' { // "late": answer once the requester left
			<-gone
		}
		m.ReplyRaw(ctlCtx(t), []byte("ok"))
	}); err != nil {
		t.Fatal(err)
	}
	resp.Flush(ctlCtx(t))
	req := ctlAgent(t, dir, "A", netcluster.WithAgentID("req"))
	if _, err := req.RequestRaw(ctlCtx(t), "ask", []byte("now")); err != nil {
		t.Fatal(err)
	}
	if _, err := req.RequestRaw(ctlCtx(t), "nobody", nil); err == nil {
		t.Fatal("a request no one listens to was answered")
	}
	late := ctlAgent(t, dir, "A", netcluster.WithAgentID("late"))
	if err := late.EmitRaw(ctlCtx(t), "warmup", nil); err != nil {
		t.Fatal(err)
	}
	lateDone := make(chan error, 1)
	go func() {
		_, err := late.RequestRaw(ctlCtx(t), "ask", []byte("late"))
		lateDone <- err
	}()
	waitUntil(t, "the late request reaches the responder", func() bool {
		ci, _ := s.Channel("A")
		return ci.Requests == 3
	})
	late.Close(ctlCtx(t))
	<-lateDone
	waitUntil(t, "the late requester is gone", func() bool { _, ok := s.Agent("A", "late"); return !ok })
	close(gone)
	waitUntil(t, "the late answer dropped", func() bool {
		ci, _ := s.Channel("B")
		return ci.RepliesDropped == 1
	})
	a, _ := s.Channel("A")
	b, _ := s.Channel("B")
	if a.Requests != 3 || a.NoResponders != 1 || b.Replies != 2 || b.RepliesDropped != 1 || b.QueueMsgs != 2 {
		t.Fatalf("A: requests %d, no responders %d; B: replies %d, dropped %d, queue msgs %d",
			a.Requests, a.NoResponders, b.Replies, b.RepliesDropped, b.QueueMsgs)
	}
	if len(b.Groups) != 1 || b.Groups[0].Group != "workers" || b.Groups[0].Pattern != "ask" ||
		len(b.Groups[0].Members) != 1 || b.Groups[0].Members[0].Agent != "resp" {
		t.Fatalf("groups of B: %+v", b.Groups)
	}
	info, _ := s.Agent("B", "resp")
	if len(info.Queues) != 1 || info.Queues[0].Group != "workers" || info.Version < wire.VersionCalls || info.QueueMsgs != 2 {
		t.Fatalf("resp: %+v", info)
	}
}

// TestCallsToOldAgents: a version 1 agent and a legacy agent get a request
// as an ordinary message and cannot answer, so the requester is told no
// one can; a version 1 agent may not send version 2 frames.
func TestCallsToOldAgents(t *testing.T) {
	t.Parallel()
	s, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	v1 := qDialRaw(t, dir, "A", "v1", wire.Version)
	v1.write(wire.AppendListen(nil, wire.TypeListen, "ask"))
	v1.sync(1)
	if info, _ := s.Agent("A", "v1"); info.Version != 1 {
		t.Fatalf("v1 agent: version %d", info.Version)
	}
	req := ctlAgent(t, dir, "A", netcluster.WithAgentID("req"))
	if _, err := req.Request(ctlCtx(t), "ask", "x"); err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("Request = %v, want no responders", err)
	}
	f := v1.next()
	v, err := wire.ParseMsg(f.Payload)
	if f.Type != wire.TypeMsg || err != nil || string(v.Event) != "ask" || string(v.Data) != `"x"` || string(v.Agent) != "req" {
		t.Fatalf("the version 1 agent got %s %+v (%v)", wire.TypeName(f.Type), v, err)
	}

	// Version 2 frames from a version 1 agent are refused.
	v1.write(wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "g", Pattern: "x"}))
	f = v1.next()
	e, _ := wire.ParseError(f.Payload)
	if f.Type != wire.TypeError || e.Code != wire.CodeProtocol || !strings.Contains(e.Text, "queuelisten frame on a protocol version 1 connection") {
		t.Fatalf("got %s %+v", wire.TypeName(f.Type), e)
	}

	// A legacy agent, listening to everything, gets the request's envelope.
	lg, err := net.Dial("unix", transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	lg.Write([]byte(`{"event":"hello"}` + "\x00"))
	// Wait for the legacy agent itself: a count of agents can be met
	// before it joins (v1, closed after its protocol error, may still be
	// listed).
	waitUntil(t, "the legacy agent joined", func() bool {
		ci, _ := s.Channel("A")
		for _, a := range ci.Agents {
			if a.Legacy {
				return true
			}
		}
		return false
	})
	if _, err := req.Request(ctlCtx(t), "ask", "y"); err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("Request with a legacy listener = %v, want no responders", err)
	}
	lg.SetReadDeadline(time.Now().Add(10 * time.Second))
	env, err := bufio.NewReader(lg).ReadString(0)
	if err != nil || env != `{"channel":"A","broadcast":false,"event":"ask","data":"y"}`+"\x00" {
		t.Fatalf("legacy agent got %q, %v", env, err)
	}
}

// TestQueueListenErrors: bad groups and patterns, and a sid in use, are
// refused with the error that names them.
func TestQueueListenErrors(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	for _, tt := range []struct {
		frames []byte
		code   uint16
		text   string
	}{
		{wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "a b", Pattern: "x"}), wire.CodeBadPattern, `invalid queue group name "a b"`},
		{wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "g", Pattern: "("}), wire.CodeBadPattern, "missing closing )"},
		{append(wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "g", Pattern: "x"}),
			wire.AppendQueueListen(nil, wire.QueueListen{SID: 1, Group: "h", Pattern: "y"})...), wire.CodeProtocol, "sid already in use: 1"},
		{wire.AppendCall(nil, 1, &wire.Msg{Channel: "A", Agent: "other", Event: "e"}), wire.CodeOrigin, "call origin"},
		{wire.AppendAnswer(nil, 1, &wire.Addr{Channel: "A", Agent: "x"}, &wire.Msg{Channel: "B", Agent: "q"}), wire.CodeOrigin, "answer origin"},
		{wire.AppendCall(nil, 1, &wire.Msg{Channel: "A", Agent: "q"}), wire.CodeMalformed, "call: empty event name"},
	} {
		r := qDialRaw(t, dir, "A", "q", wire.VersionCalls)
		r.write(tt.frames)
		f := r.next()
		e, _ := wire.ParseError(f.Payload)
		if f.Type != wire.TypeError || e.Code != tt.code || !strings.Contains(e.Text, tt.text) {
			t.Errorf("got %s %d %q, want error %d containing %q", wire.TypeName(f.Type), e.Code, e.Text, tt.code, tt.text)
		}
	}
}

// qDialRaw connects a native agent driven frame by frame, whose Hello
// says version.
func qDialRaw(t testing.TB, dir, channel, id string, version byte) *ctlRaw {
	t.Helper()
	nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, channel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &ctlRaw{t: t, nc: nc, rd: wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	r.write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: version, AgentID: id, Channel: channel})...))
	f := r.next()
	w, _ := wire.ParseWelcome(f.Payload)
	if f.Type != wire.TypeWelcome || w.Version != version {
		t.Fatalf("got %s version %d; want welcome version %d", wire.TypeName(f.Type), w.Version, version)
	}
	return r
}
