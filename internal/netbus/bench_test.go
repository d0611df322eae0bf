package netbus_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// BenchmarkThroughput: two buses, one sending, over memnet (in memory) or
// UDP peers mode on 127.0.0.1. Real time; no loss injected.
func BenchmarkThroughput(b *testing.B) {
	keys := []netbus.Key{{ID: 1, Secret: make([]byte, 32)}}
	for _, net := range []string{"memnet", "udp-127.0.0.1"} {
		for _, size := range []int{128, 4096} {
			for _, sealed := range []bool{true, false} {
				name := fmt.Sprintf("%s/%dB/sealed=%v", net, size, sealed)
				b.Run(name, func(b *testing.B) {
					var got atomic.Int64
					deliver := func(netbus.Peer, string, []byte) { got.Add(1) }
					cfgs := [2]netbus.Config{}
					if net == "memnet" {
						hub := memnet.NewHub(memnet.HubOptions{})
						cfgs[0].Transport, cfgs[1].Transport = hub.Attach(), hub.Attach()
					} else {
						pa, pb := freePortB(b), freePortB(b)
						peers := []string{fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)}
						cfgs[0].Port, cfgs[1].Port = pa, pb
						cfgs[0].Peers, cfgs[1].Peers = peers, peers
					}
					var buses [2]*netbus.Bus
					for i := range cfgs {
						if sealed {
							cfgs[i].Keys = keys
						}
						bus, err := netbus.New(cfgs[i], deliver)
						if err != nil {
							b.Fatal(err)
						}
						buses[i] = bus
						defer bus.Close()
					}
					frame := make([]byte, size)
					b.SetBytes(int64(size))
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						for buses[0].Send("c", frame) != nil {
							time.Sleep(50 * time.Microsecond)
						}
					}
					deadline := time.Now().Add(30 * time.Second)
					for got.Load() < int64(b.N) && time.Now().Before(deadline) {
						time.Sleep(100 * time.Microsecond)
					}
					b.StopTimer()
					b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "msgs/s")
					if ps := buses[1].Stats().Peers; len(ps) == 1 {
						b.ReportMetric(float64(ps[0].LostMessages), "lost")
					}
				})
			}
		}
	}
}

func freePortB(b *testing.B) int { return freePortTB(b) }

// TestBacklogBurst (real time): a sender with a deep backlog of fragmented
// messages. Regression: heartbeats announced sequences packed but not yet
// written, receivers saw phantom gaps beyond the window and gave them up.
func TestBacklogBurst(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	hub := memnet.NewHub(memnet.HubOptions{})
	a, err := netbus.New(netbus.Config{Transport: hub.Attach(), HeartbeatInterval: time.Millisecond}, func(netbus.Peer, string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := netbus.New(netbus.Config{Transport: hub.Attach()}, func(netbus.Peer, string, []byte) { got.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const N = 5000
	frame := make([]byte, 4096)
	for range N {
		for a.Send("c", frame) != nil {
			time.Sleep(50 * time.Microsecond)
		}
	}
	waitReal(t, "all", func() bool { return got.Load() == N })
	ps := peerStats(t, b, a.NodeID())
	if ps.LostDatagrams != 0 || ps.Late != 0 || ps.LostMessages != 0 {
		t.Fatalf("stats %+v", ps)
	}
}
