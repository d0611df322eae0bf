package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
)

// withoutAnswers leaves out the answer subject every server subscribes to
// for itself (bbAnswers), for tests that check the listeners' subjects.
func withoutAnswers(subjects []string) []string {
	tok := ".~" + base64.RawURLEncoding.EncodeToString([]byte(bbAnswers)) + "."
	var out []string
	for _, s := range subjects {
		if !strings.Contains(s, tok) {
			out = append(out, s)
		}
	}
	return out
}

// TestBackboneRequestReply: requests cross the NATS backbone and their
// answers come back to the requester's server, across channels there;
// a queue group is one across servers; a request no server subscribes to
// gets ErrNoResponders at once (NATS says no one has interest), one that
// a server subscribes to waits for its context.
func TestBackboneRequestReply(t *testing.T) {
	t.Parallel()
	// The cluster takes only this test's token. A test that kills a NATS
	// server leaves its port free, and its backbones retry it; one of
	// these servers, on a port of the kernel's choice, may get it, and a
	// stranger's backbone would then join this cluster with its
	// subscriptions (all of A while an agent of its own connects) and
	// answer the probes: "none" would wait for its context.
	token := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	nc := natstest.RunCluster(t, 3, natstest.Options{NoJetStream: true, Token: token})
	chans := `{"A": {"propagatetonet": true, "propagatetochannels": "B"}, "B": {}}`
	var hosts []*ntNode
	for i := range 3 {
		cfg := bbConfig(t, []string{nc.URL(i)}, `{"nodename": "host`+fmt.Sprint(i+1)+`", "channels": `+chans+`}`)
		cfg.NATS.Token = token
		hosts = append(hosts, ntStart(t, cfg))
	}
	bbConnected(t, hosts...)
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]

	resp := ctlAgent(t, h2.dir, "B", netcluster.WithAgentID("far"))
	if _, err := resp.On("price", func(m *netcluster.Message) { m.Reply(context.Background(), "from "+m.Node) }); err != nil {
		t.Fatal(err)
	}
	resp.Flush(ctlCtx(t))
	worker := ctlAgent(t, h3.dir, "A", netcluster.WithAgentID("worker"))
	if _, err := worker.OnQueue("resize", "resizers", func(m *netcluster.Message) { m.ReplyRaw(context.Background(), []byte("done")) }); err != nil {
		t.Fatal(err)
	}
	worker.Flush(ctlCtx(t))
	bbSubjects(t, h2, "netcluster.default.A.price", "netcluster.default.B.price")
	bbSubjects(t, h3)
	bbGroups(t, h3, "netcluster.default.A.resize A.resizers.")

	// h2 subscribes on its own NATS server; host 1's learns of it by
	// the route, and until then it would answer the request's probe
	// with no responders. (Its interest in the subject is no sign of
	// that: host 1 subscribes to all of A for a moment whenever an agent
	// connects, as it listens to everything until its wire is known, and
	// that subscription matches too.)
	bbRouted(t, nc.Servers[0], "n2", "netcluster.default.A.price")
	req := ctlAgent(t, h1.dir, "A", netcluster.WithAgentID("near"))
	got, err := req.Request(ctlCtx(t), "price", 1)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	got.Decode(&s)
	if s != "from "+h1.srv.NodeID() || got.Node != h2.srv.NodeID() || got.Channel != "B" || got.Agent != "far" {
		t.Fatalf("reply %q from %s/%s/%s", s, got.Node, got.Channel, got.Agent)
	}
	// The group's queue subscription is on host 3's NATS server; the
	// request goes out on host 1's once the route has brought it there.
	bbRouted(t, nc.Servers[0], "n3", "netcluster.default.A.resize")
	got, err = req.RequestRaw(ctlCtx(t), "resize", nil)
	if err != nil {
		t.Fatalf("request to a queue group on another server: %v", err)
	}
	if string(got.Data) != "done" || got.Node != h3.srv.NodeID() {
		t.Fatalf("queue group reply %q from %q", got.Data, got.Node)
	}
	// No server subscribes to "none": NATS says so, and the request
	// ends with ErrNoResponders long before its deadline.
	ctx, cancel := context.WithTimeout(ctlCtx(t), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := req.Request(ctx, "none", 1); !errors.Is(err, netcluster.ErrNoResponders) {
		bbLogState(t, nc, hosts, "netcluster.default.A.none")
		t.Fatalf("request to no one over NATS = %v after %v, want ErrNoResponders", err, time.Since(start))
	}
	// A server subscribes to the subject, but its agent does not answer:
	// the request waits for its context.
	if _, err := resp.On("mute", func(*netcluster.Message) {}); err != nil {
		t.Fatal(err)
	}
	resp.Flush(ctlCtx(t))
	bbSubjects(t, h2, "netcluster.default.A.mute", "netcluster.default.A.price", "netcluster.default.B.mute", "netcluster.default.B.price")
	// On every NATS server, not only host 1's: a backbone that lost its
	// connection (a loaded machine) may be back on any of them. Host 1's
	// own subscription to all of A, made when the requester connected,
	// may still be there: an interest check would count it, and the
	// probe would get no responders.
	bbRouted(t, nc.Servers[0], "n2", "netcluster.default.A.mute")
	bbRouted(t, nc.Servers[2], "n2", "netcluster.default.A.mute")
	ctx2, cancel2 := context.WithTimeout(ctlCtx(t), 300*time.Millisecond)
	defer cancel2()
	if _, err := req.Request(ctx2, "mute", 1); !errors.Is(err, context.DeadlineExceeded) {
		for i, h := range hosts {
			b := h.srv.Stats().Backbone
			t.Logf("host %d: NATS %s, %d reconnects, last error %q", i+1, b.URL, b.Reconnects, b.LastError)
		}
		t.Fatalf("request to a listener that does not answer = %v, want the deadline", err)
	}

	// A group with members on two servers: one of them gets each job.
	var mu sync.Mutex
	counts := map[string]map[int]int{}
	for _, h := range []*ntNode{h2, h3} {
		for range 2 {
			a := ctlAgent(t, h.dir, "A")
			if _, err := a.OnQueue("job", "g", func(m *netcluster.Message) {
				var k int
				m.Decode(&k)
				mu.Lock()
				if counts[h.srv.NodeID()] == nil {
					counts[h.srv.NodeID()] = map[int]int{}
				}
				counts[h.srv.NodeID()][k]++
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
			a.Flush(ctlCtx(t))
		}
	}
	bbSubjects(t, h2, "netcluster.default.A.mute", "netcluster.default.A.price", "netcluster.default.B.mute", "netcluster.default.B.price")
	bbGroups(t, h2, "netcluster.default.A.job A.g.")
	bbGroups(t, h3, "netcluster.default.A.job A.g.", "netcluster.default.A.resize A.resizers.")
	// Both queue subscriptions on the requester's NATS server.
	bbRouted(t, nc.Servers[0], "n2", "netcluster.default.A.job")
	bbRouted(t, nc.Servers[0], "n3", "netcluster.default.A.job")
	const jobs = 200
	for k := range jobs {
		if err := req.Emit(ctlCtx(t), "job", k); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "every job handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counts[h2.srv.NodeID()])+len(counts[h3.srv.NodeID()]) >= jobs
	})
	time.Sleep(200 * time.Millisecond) // a job handled twice would show now
	mu.Lock()
	defer mu.Unlock()
	seen := map[int]int{}
	for _, ks := range counts {
		for k, c := range ks {
			seen[k] += c
		}
	}
	for k := range jobs {
		if seen[k] != 1 {
			t.Fatalf("job %d handled %d times in all (%d on host 2, %d on host 3)", k, seen[k],
				counts[h2.srv.NodeID()][k], counts[h3.srv.NodeID()][k])
		}
	}
}

// bbLogState logs each host's backbone connection and subjects, each NATS
// server's clients (a stranger among them?), and which clients and routes
// subscribe to a subject matching subject: what decides whether a probe
// on it is told no responders.
func bbLogState(t *testing.T, nc *natstest.Cluster, hosts []*ntNode, subject string) {
	t.Helper()
	for i, h := range hosts {
		b := h.srv.Stats().Backbone
		t.Logf("host %d: %s to NATS %s, %d reconnects, last error %q, subjects %q, groups %q",
			i+1, b.State, b.URL, b.Reconnects, b.LastError, b.Subjects, b.Groups)
	}
	for _, s := range nc.Servers {
		cz, err := s.Connz(&server.ConnzOptions{Subscriptions: true})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range cz.Conns {
			names = append(names, c.Name)
		}
		t.Logf("NATS %s: clients %q", s.Name(), names)
		for _, c := range cz.Conns {
			for _, sub := range c.Subs {
				if server.SubjectsCollide(sub, subject) {
					t.Logf("NATS %s: client %q subscribes %s", s.Name(), c.Name, sub)
				}
			}
		}
		rz, err := s.Routez(&server.RoutezOptions{Subscriptions: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rz.Routes {
			for _, sub := range r.Subs {
				if server.SubjectsCollide(sub, subject) {
					t.Logf("NATS %s: route from %s subscribes %s", s.Name(), r.RemoteName, sub)
				}
			}
		}
	}
}
