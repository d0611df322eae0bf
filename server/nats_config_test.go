package server

import (
	"testing"

	"github.com/netcluster/netcluster/config"
)

// TestNATSWithoutAddrNoMulticast checks that a config with a nats block
// and no addr starts no UDP network, and that CheckNetwork looks at
// nothing of the multicast settings then.
func TestNATSWithoutAddrNoMulticast(t *testing.T) {
	bus, err := config.Parse([]byte(`{"connecttonet": true, "netpayload": 512, "nats": {"urls": ["nats://127.0.0.1:1"]}}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNetwork(bus); err != nil {
		t.Errorf("CheckNetwork = %v, want nil: no UDP network runs", err)
	}
	bus.SocketDir = t.TempDir()
	s, err := New(Config{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.startNetLocked(bus); err != nil {
		t.Fatal(err)
	}
	if s.net.Load() != nil {
		s.stopNet()
		t.Error("the UDP network started with nats and no addr")
	}
}
