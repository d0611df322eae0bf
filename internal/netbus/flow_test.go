package netbus_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// TestFlowControlLoss: 100,000 messages of 128 B and of 4 KiB, sent as
// fast as SendWait takes them, to a receiver whose inbox holds 2,048
// datagrams (a socket buffer) on a link that drops 5% of the datagrams:
// every message arrives, in order, and none is counted lost. The sender
// slows down (it waits for acks) instead.
func TestFlowControlLoss(t *testing.T) {
	for _, size := range []int{128, 4096} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hub := memnet.NewHub(memnet.HubOptions{Inbox: 2048})
				var got, bad atomic.Int64
				a := newNode(t, hub, "a", nil)
				conn := hub.Attach()
				lb := &logBuf{}
				b, err := netbus.New(netbus.Config{Transport: conn, NodeName: "b", Logger: slog.New(slog.NewTextHandler(lb, nil))}, func(_ netbus.Peer, _ string, f []byte) {
					if binary.BigEndian.Uint32(f) != uint32(got.Load()) {
						bad.Add(1)
					}
					got.Add(1)
				})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				hub.SetFilter(func(l memnet.Link, n uint64, _ []byte) memnet.Action {
					if l.To == conn.LocalAddr() && n%20 == 7 {
						return memnet.Drop
					}
					return memnet.Pass
				})
				const n = 100000
				frame := make([]byte, size)
				ctx := context.Background()
				for i := range n {
					binary.BigEndian.PutUint32(frame, uint32(i))
					if err := a.bus.SendWait(ctx, "c", frame); err != nil {
						t.Fatal(err)
					}
				}
				for deadline := time.Now().Add(60 * time.Second); got.Load() < n && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond)
				t.Logf("a sent %+v", a.bus.Stats().Sent)
				ps := peerStats(t, b, a.bus.NodeID())
				st := a.bus.Stats().Sent
				_, dropped, overflow := hub.Counts()
				if got.Load() != n || bad.Load() != 0 || ps.LostMessages != 0 || ps.LostDatagrams != 0 {
					t.Errorf("got %d (%d out of order), stats %+v\n%.3000s", got.Load(), bad.Load(), ps, lb.String())
				}
				if dropped == 0 {
					t.Error("the filter dropped nothing")
				}
				t.Logf("%d B: %d messages, %d datagrams, %d retransmits, %d window waits, %d cuts, window %d; hub dropped %d, inbox overflow %d",
					size, n, st.Datagrams, st.Retransmits, st.WindowWaits, st.WindowCuts, st.Window, dropped, overflow)
			})
		})
	}
}
