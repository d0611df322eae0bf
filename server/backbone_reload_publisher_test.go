package server

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
)

// TestBackboneReloadPublisher reloads the publishing host with a changed
// backbone setting (the new Backbone, the same node id): the listener on
// host 2 gets every message once, in order, on a durable channel (the
// reload between two bursts, or in the middle of one) and on a plain one
// (between two bursts; plain channels' two Backbones overlap). The new
// Backbone used to number its messages from 1 again: host 2 dropped them
// as duplicates, 20 of 20 on either channel, until the numbers passed the
// old ones.
func TestBackboneReloadPublisher(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		durable, midway bool
	}{
		{"durable", true, false},
		{"durable midway", true, true},
		{"plain", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reloadPublisher(t, tc.durable, tc.midway)
		})
	}
}

func reloadPublisher(t *testing.T, durable, midway bool) {
	n := 40
	if midway {
		n = 2000
	}
	ns, cfg, h1, h2, in := reloadHosts(t, durable, "rp")
	em := ctlAgent(t, h1.dir, "D")
	var sent atomic.Int64
	emit := func(from, to int) error {
		for i := from; i < to; i++ {
			if err := em.EmitRaw(ctlCtx(t), "n", []byte(strconv.Itoa(i))); err != nil {
				return err
			}
			sent.Add(1)
		}
		return nil
	}
	if err := emit(0, 20); err != nil {
		t.Fatal(err)
	}
	bbWait(t, "the first 20", 30*time.Second, func() bool { return len(in.get()) >= 20 })
	changed := bbConfig(t, []string{ns.URL()}, cfg("rp1"))
	changed.NATS.Name = "reloaded"
	changed.SocketDir = h1.dir
	emitted := make(chan error, 1)
	if midway {
		go func() { emitted <- emit(20, n) }()
		bbWait(t, "a part of the burst sent", 30*time.Second, func() bool { return sent.Load() >= int64(n)/3 })
	}
	if err := h1.srv.Reload(changed); err != nil {
		t.Fatal(err)
	}
	if !midway {
		bbConnected(t, h1)
		go func() { emitted <- emit(20, n) }()
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) && len(in.get()) < n {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would come now
	checkExactlyInOrder(t, "across the publisher's reload", numbers(t, in), n)
	if t.Failed() {
		t.Logf("host 1: %+v", h1.srv.Stats().Backbone)
		t.Logf("host 2: %+v", h2.srv.Stats().Backbone)
	}
}

// reloadHosts starts a nats-server and two hosts on it, named prefix1 and
// prefix2, whose channel D goes to the network (durable or not), and a
// listener of event n on host 2, ready: host 2 consumes D, or its
// subscription is up. cfg is a host's configuration by name, for reloads.
func reloadHosts(t *testing.T, durable bool, prefix string) (ns *natstest.Server, cfg func(name string) string, h1, h2 *ntNode, in *ntInbox) {
	t.Helper()
	ns = natstest.Run(t, natstest.Options{})
	cfg = func(name string) string {
		if !durable {
			return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true}}}`
		}
		return `{"nodename": "` + name + `", "channels": {"D": {"propagatetonet": true, "durable": {}}}}`
	}
	h1 = ntStart(t, bbConfig(t, []string{ns.URL()}, cfg(prefix+"1")))
	h2 = ntStart(t, bbConfig(t, []string{ns.URL()}, cfg(prefix+"2")))
	bbConnected(t, h1, h2)
	_, in = ntListen(t, h2, "D", "n")
	if durable {
		ntWait(t, "host 2 consuming", func() bool { return len(h2.srv.Stats().Backbone.Durable) == 1 })
	} else {
		bbSubjects(t, h2, "netcluster.default.D.n")
	}
	return ns, cfg, h1, h2, in
}
