package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
)

// TestNetRequestReply: a request on a channel with propagatetonet is
// answered from another server, across channels there too; with no one
// listening anywhere it waits for its context (no ErrNoResponders: the
// server cannot know who listens elsewhere); queue groups are per server.
func TestNetRequestReply(t *testing.T) {
	t.Parallel()
	group, port := ntGroup()
	cfg := `{"channels": {"A": {"propagatetonet": true, "propagatetochannels": "B"}, "B": {}}}`
	n1 := ntStart(t, ntConfig(t, group, port, cfg))
	n2 := ntStart(t, ntConfig(t, group, port, cfg))
	ntPeers(t, n1, n2)

	resp := ctlAgent(t, n2.dir, "B", netcluster.WithAgentID("far"))
	if _, err := resp.On("price", func(m *netcluster.Message) {
		m.Reply(context.Background(), "from "+m.Node)
	}); err != nil {
		t.Fatal(err)
	}
	resp.Flush(ctlCtx(t))

	req := ctlAgent(t, n1.dir, "A", netcluster.WithAgentID("near"))
	got, err := req.Request(ctlCtx(t), "price", 1)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	got.Decode(&s)
	if s != "from "+n1.srv.NodeID() || got.Node != n2.srv.NodeID() || got.Channel != "B" || got.Agent != "far" {
		t.Fatalf("reply %q from %s/%s/%s", s, got.Node, got.Channel, got.Agent)
	}

	// No one listens to "none" anywhere: the request waits for ctx.
	ctx, cancel := context.WithTimeout(ctlCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := req.Request(ctx, "none", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request to no one over the network = %v, want the deadline", err)
	}

	// A queue group on each server: each server's group gets every
	// message once.
	var mu sync.Mutex
	counts := map[string]map[int]int{}
	for _, n := range []*ntNode{n1, n2} {
		for i := range 2 {
			a := ctlAgent(t, n.dir, "A")
			member := fmt.Sprintf("%s/%d", n.srv.NodeID(), i)
			if _, err := a.OnQueue("job", "g", func(m *netcluster.Message) {
				var k int
				m.Decode(&k)
				mu.Lock()
				if counts[n.srv.NodeID()] == nil {
					counts[n.srv.NodeID()] = map[int]int{}
				}
				counts[n.srv.NodeID()][k]++
				mu.Unlock()
				_ = member
			}); err != nil {
				t.Fatal(err)
			}
			a.Flush(ctlCtx(t))
		}
	}
	const jobs = 200
	for k := range jobs {
		if err := req.Emit(ctlCtx(t), "job", k); err != nil {
			t.Fatal(err)
		}
	}
	ntWait(t, "jobs on both servers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counts[n1.srv.NodeID()]) == jobs && len(counts[n2.srv.NodeID()]) == jobs
	})
	mu.Lock()
	defer mu.Unlock()
	for node, ks := range counts {
		for k, c := range ks {
			if c != 1 {
				t.Fatalf("server %s: job %d handled %d times", node, k, c)
			}
		}
	}
}
