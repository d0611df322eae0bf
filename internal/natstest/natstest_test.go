package natstest

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunClusterMeshed: RunCluster returns only once every server has its
// whole pool of routes to every other. (NATS servers of a cluster do not
// forward each other's messages: a server with routes to one peer only
// neither reaches the other's subscribers nor learns of them, and until
// then answers requests for them with no responders. Counting routes was
// not enough: with pools of 3, the 3 routes to one peer passed for a full
// mesh of 3 servers.)
func TestRunClusterMeshed(t *testing.T) {
	t.Parallel()
	for range 3 {
		c := RunCluster(t, 3, Options{NoJetStream: true})
		for _, s := range c.Servers {
			got := c.routesTo(s)
			for _, o := range c.Servers {
				if o != s && got[o.Name()] < c.poolSize() {
					t.Fatalf("server %s has %d routes to %s, want %d (routes: %v)", s.Name(), got[o.Name()], o.Name(), c.poolSize(), got)
				}
			}
		}
	}
}
