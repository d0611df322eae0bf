package server

import (
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
	"github.com/netcluster/netcluster/internal/wire"
)

func TestParseNetMsg(t *testing.T) {
	msg := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a1", Event: "log", Data: []byte("x")})
	noEvent := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "a1"})
	listen := wire.AppendListen(nil, wire.TypeListen, "log")
	tests := []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"msg", msg, true},
		{"empty", nil, false},
		{"short-header", msg[:wire.HeaderLen-1], false},
		{"cut", msg[:len(msg)-1], false},
		{"trailing-byte", append(append([]byte(nil), msg...), 0), false},
		{"two-frames", append(append([]byte(nil), msg...), msg...), false},
		{"not-msg", listen, false},
		{"no-event", noEvent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := parseNetMsg(tt.frame)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (string(v.Channel) != "A" || string(v.Event) != "log" || string(v.Data) != "x") {
				t.Errorf("parsed %q %q %q", v.Channel, v.Event, v.Data)
			}
		})
	}
}

// TestNetSendCountsOnce holds the Bus's queue full (its transport's
// writes paused) and sends through the server's network side: each
// message that finds the queue full is counted once in queue_full,
// whether it waits netSendWait and is dropped, or waits and is sent.
func TestNetSendCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		discard := slog.New(slog.NewTextHandler(io.Discard, nil))
		conn := memnet.NewHub(memnet.HubOptions{}).Attach()
		n := &netNode{log: discard}
		b, err := netbus.New(netbus.Config{Transport: conn, MaxMessage: 1000, SendQueue: 4000, Logger: discard}, n.deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			conn.ResumeWrites()
			b.Close()
		}()
		n.bus.Store(b)
		s := &Server{}
		s.net.Store(n)

		conn.PauseWrites()
		frame := make([]byte, 1000)
		for b.Send("c", frame) == nil { // other senders fill the queue
			synctest.Wait()
		}
		base := s.netStats().QueueFull

		start := time.Now()
		n.send("c", frame)
		if d := time.Since(start); d != netSendWait {
			t.Errorf("send gave up after %v, want %v", d, netSendWait)
		}
		st := s.netStats()
		if st.QueueFull-base != 1 || st.SendDropped != 1 || st.Sent != 0 {
			t.Errorf("after a message dropped for a full queue: queue_full +%d, send_dropped %d, sent %d; want +1, 1, 0",
				st.QueueFull-base, st.SendDropped, st.Sent)
		}

		done := make(chan struct{})
		go func() {
			n.send("c", frame)
			close(done)
		}()
		time.Sleep(netSendWait / 2)
		synctest.Wait()
		conn.ResumeWrites()
		<-done
		st = s.netStats()
		if st.QueueFull-base != 2 || st.SendDropped != 1 || st.Sent != 1 {
			t.Errorf("after a message that waited, then went: queue_full +%d, send_dropped %d, sent %d; want +2, 1, 1",
				st.QueueFull-base, st.SendDropped, st.Sent)
		}
	})
}
