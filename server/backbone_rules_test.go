package server

import (
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
)

// The channel rules mean with NATS what they mean with multicast: a
// channel with acceptnet false takes nothing from the backbone (and
// subscribes to nothing); a message that came from the backbone is never
// published again (one hop); an event name that is no subject token
// crosses as it is.
func TestBackboneChannelRules(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}, "R": {"propagatetonet": true}}}`))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}, "R": {"propagatetonet": true, "acceptnet": false}}}`))
	bbConnected(t, h1, h2)
	_, inA := ntListen(t, h2, "A", ".*")
	_, inR := ntListen(t, h2, "R", ".*")
	bbSubjects(t, h2, "netcluster.default.A.>") // none for R

	const odd = "héllo wörld.*.~" // no valid subject token
	src := ctlAgent(t, h1.dir, "A")
	srcR := ctlAgent(t, h1.dir, "R")
	ctx := ctlCtx(t)
	if err := src.EmitRaw(ctx, odd, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := srcR.EmitRaw(ctx, "e", []byte("refused")); err != nil {
		t.Fatal(err)
	}
	ntWait(t, "the message on A", func() bool { return len(inA.get()) == 1 })
	if m := inA.get()[0]; m.Event != odd || string(m.Data) != "x" || m.Node != h1.srv.NodeID() {
		t.Errorf("on host 2: %+v; want event %q from host 1", m, odd)
	}
	time.Sleep(200 * time.Millisecond) // room for what must not come
	if n := len(inR.get()); n != 0 {
		t.Errorf("host 2's R (acceptnet false) got %d messages", n)
	}
	st := h2.srv.Stats().Backbone
	if st.MsgsOut != 0 {
		t.Errorf("host 2 published %d messages: a message from NATS went back to NATS", st.MsgsOut)
	}
	for _, s := range st.Subjects {
		if strings.HasPrefix(s, "netcluster.default.R.") {
			t.Errorf("host 2 subscribes to %s though R refuses the network", s)
		}
	}
	if got := h1.srv.Stats().Backbone.MsgsOut; got != 2 {
		t.Errorf("host 1 published %d messages, want 2", got)
	}
}
