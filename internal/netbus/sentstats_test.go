package netbus_test

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// failingTransport is a memnet Conn whose writes fail while fail is set,
// as a socket's would (no route, a firewall).
type failingTransport struct {
	*memnet.Conn
	fail atomic.Bool
}

func (f *failingTransport) WriteBatch(ps []netbus.Packet) error {
	if f.fail.Load() {
		return errors.New("write refused")
	}
	return f.Conn.WriteBatch(ps)
}

// TestSentDatagramsCountsWrites: Sent.Datagrams and Bytes count the data
// datagrams the transport took, not those packed: none while the writes
// are blocked (a full socket buffer), all once they go, and none of a
// write that fails. (They were counted when packed, so a datagram
// waiting for the socket or lost to a failed write showed as sent.)
func TestSentDatagramsCountsWrites(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		conn := memnet.NewHub(memnet.HubOptions{}).Attach()
		tr := &failingTransport{Conn: conn}
		b, err := netbus.New(netbus.Config{
			Transport: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, func(netbus.Peer, string, []byte) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn.ResumeWrites()
			b.Close()
		})
		frame := make([]byte, 1000) // one datagram each
		const n = 10
		conn.PauseWrites()
		for range n {
			if err := b.Send("c", frame); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // the writer packed what it took and is blocked writing it
		st := b.Stats().Sent
		if st.Messages == 0 || st.Datagrams != 0 || st.Bytes != 0 {
			t.Fatalf("writes blocked: %d messages packed, %d datagrams (%d bytes) counted sent, want some and 0",
				st.Messages, st.Datagrams, st.Bytes)
		}
		conn.ResumeWrites()
		synctest.Wait()
		st = b.Stats().Sent
		if st.Messages != n || st.Datagrams != n || st.Bytes < n*uint64(len(frame)) {
			t.Fatalf("writes done: %d messages, %d datagrams (%d bytes), want %d and %d (at least %d bytes)",
				st.Messages, st.Datagrams, st.Bytes, n, n, n*len(frame))
		}

		tr.fail.Store(true)
		for range n {
			if err := b.Send("c", frame); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		after := b.Stats().Sent
		if after.Messages != 2*n || after.WriteErrors == 0 {
			t.Fatalf("failing writes: %d messages, %d write errors, want %d and some", after.Messages, after.WriteErrors, 2*n)
		}
		if after.Datagrams != st.Datagrams || after.Bytes != st.Bytes {
			t.Errorf("failing writes: %d datagrams (%d bytes) counted sent, want %d (%d) as before",
				after.Datagrams, after.Bytes, st.Datagrams, st.Bytes)
		}
	})
}
