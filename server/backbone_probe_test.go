package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/natstest"
)

// TestBackboneNoRespondersAfterReconnect: a request made while the
// backbone reconnects to NATS, that no local agent can answer and no
// other server subscribes to, gets ErrNoResponders once NATS is back.
// nats.go holds the Call while the connection is down (outbuffer) and
// sends it on reconnecting; the probe used to be skipped then, and the
// request waited for its context ("context deadline exceeded after NATS
// was back 9.99s, want ErrNoResponders").
func TestBackboneNoRespondersAfterReconnect(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	px := natstest.NewProxy(t, ns.Addr().String())
	h := ntStart(t, bbConfig(t, []string{px.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h)
	req := ctlAgent(t, h.dir, "A", netcluster.WithAgentID("near"))
	if err := req.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}

	px.Cut()
	ntWait(t, "the backbone to lose NATS", func() bool { return h.srv.Stats().Backbone.State != "connected" })
	ctx, cancel := context.WithTimeout(ctlCtx(t), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := req.Request(ctx, "none", 1)
		done <- err
	}()
	ntWait(t, "the request to reach the server", func() bool { return requestsOn(h, "A") == 1 })
	// The server acts on a connection's frames in order: once the Flush
	// after the Call returns, the Call is routed and its probe made,
	// while NATS is still down.
	if err := req.Flush(ctlCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := h.srv.Stats().Backbone.State; st == "connected" {
		t.Fatalf("backbone %s with NATS cut off", st)
	}
	px.Mend()
	start := time.Now()
	if err := <-done; !errors.Is(err, netcluster.ErrNoResponders) {
		b := h.srv.Stats().Backbone
		t.Fatalf("request made while reconnecting = %v after NATS was back %v (backbone %s, %d reconnects), want ErrNoResponders",
			err, time.Since(start), b.State, b.Reconnects)
	}
}

// requestsOn is the count of requests on h's channel name.
func requestsOn(h *ntNode, name string) uint64 {
	for _, ch := range h.srv.Stats().Channels {
		if ch.Name == name {
			return ch.Requests
		}
	}
	return 0
}
