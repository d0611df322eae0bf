package netbus

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// idleTransport receives nothing and drops what is written: the receive
// benchmark feeds handlePacket itself.
type idleTransport struct{ done chan struct{} }

func (t *idleTransport) WriteBatch([]Packet) error { return nil }
func (t *idleTransport) ReadBatch([]Packet) (int, error) {
	<-t.done
	return 0, net.ErrClosed
}
func (t *idleTransport) LocalAddr() netip.AddrPort { return netip.MustParseAddrPort("10.0.0.1:4454") }
func (t *idleTransport) Close() error {
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	return nil
}

// BenchmarkReceive measures the receive path, from a plaintext DATA
// datagram (10 messages of 128 B) to the deliver callback, in order and
// with every pair of datagrams swapped (one held out of order each time).
func BenchmarkReceive(b *testing.B) {
	for _, swap := range []bool{false, true} {
		name := "in-order"
		if swap {
			name = "pairs-swapped"
		}
		b.Run(name, func(b *testing.B) {
			got := 0
			// No tick: the loop goroutine stays idle, and flushOut is ours.
			bus, err := New(Config{Transport: &idleTransport{done: make(chan struct{})}, Tick: time.Hour,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(Peer, string, []byte) { got++ })
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			d := datagram{header: header{Version: datagramVersion, Kind: kindData, Node: NodeID{9}, Epoch: bus.epoch, Seq: 1}}
			for range 10 {
				d.Data.Records = append(d.Data.Records, record{"A", make([]byte, 128)})
			}
			tmpl, err := encodeDatagram(&d)
			if err != nil {
				b.Fatal(err)
			}
			bufs := [2][]byte{append([]byte(nil), tmpl...), append([]byte(nil), tmpl...)}
			src := netip.MustParseAddrPort("10.0.0.2:4454")
			now := time.Now()
			b.SetBytes(10 * 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq := uint64(i) + 1
				if swap && (i%2 == 1 || i+1 < b.N) {
					seq = uint64(i^1) + 1 // 2, 1, 4, 3, …
				}
				buf := bufs[i&1]
				putUint64(buf[26:], seq)
				putUint64(buf[headerLen:], (seq-1)*10)
				bus.mu.Lock()
				bus.handlePacket(buf, src, now)
				bus.mu.Unlock()
				bus.flushOut()
			}
			b.StopTimer()
			if want := b.N * 10; got != want {
				b.Fatalf("delivered %d, want %d", got, want)
			}
		})
	}
}
