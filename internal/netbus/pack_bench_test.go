package netbus

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPackSeal measures batching + encoding + sealing per message.
func BenchmarkPackSeal(b *testing.B) {
	for _, bc := range []struct {
		name   string
		size   int
		sealed bool
	}{
		{"128B-sealed", 128, true}, {"128B-plain", 128, false},
		{"4KiB-sealed", 4096, true}, {"4KiB-plain", 4096, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{NodeName: "bench"}
			if bc.sealed {
				cfg.Keys = []Key{{1, secret(1)}}
			}
			if err := cfg.setDefaults(); err != nil {
				b.Fatal(err)
			}
			bus := &Bus{cfg: cfg, id: testNode, epoch: testEpoch}
			kr, _ := newKeyring(cfg.Keys)
			bus.keys.Store(kr.forSession(bus.id, bus.epoch))
			bus.hist.init()
			const perBatch = 256
			q := &sendQueue{}
			frame := make([]byte, bc.size)
			for range perBatch {
				q.recs = append(q.recs, qrec{ch: "channel", off: len(q.arena), n: len(frame)})
				q.arena = append(q.arena, frame...)
			}
			var out []Packet
			now := time.Now()
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += perBatch {
				out, _ = bus.pack(q, now, out[:0])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkOpen measures authenticating and decrypting a full datagram.
func BenchmarkOpen(b *testing.B) {
	kr := mustKeyring(b, Key{1, secret(1)})
	d := datagram{header: hdr(kindData, 1), Data: dataBody{Records: []record{{"c", make([]byte, 1300)}}}}
	plain, err := encodeDatagram(&d)
	if err != nil {
		b.Fatal(err)
	}
	sealed := kr.sealDatagram(plain)
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("session-subkey=%v", cached), func(b *testing.B) {
			var cache *openCache
			if cached {
				cache = &openCache{} // the receiver's: derived once per session
			}
			buf := make([]byte, len(sealed))
			b.SetBytes(int64(len(sealed)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, sealed)
				if _, _, err := kr.openCached(buf, cache); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
