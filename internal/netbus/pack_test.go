package netbus

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Messages of one size make datagrams of one size: 4 KiB is four
// fragments of 1 KiB, not three full ones and a short one, so a stream of
// them goes out in runs of one size (one GSO send each).
func TestFragmentsOfEqualSize(t *testing.T) {
	for _, tc := range []struct {
		size  int
		sizes []int // fragment chunk sizes
	}{
		{4096, []int{1024, 1024, 1024, 1024}},
		{4097, []int{1025, 1025, 1025, 1022}},
		{1400, []int{700, 700}},
		{16 << 10, append(slices.Repeat([]int{1261}, 12), 1252)},
	} {
		cfg := Config{NodeName: "t"}
		if err := cfg.setDefaults(); err != nil {
			t.Fatal(err)
		}
		bus := &Bus{cfg: cfg, id: testNode, epoch: testEpoch}
		bus.keys.Store((*keyring)(nil))
		bus.hist.init()
		q := &sendQueue{recs: []qrec{{ch: "channel", n: tc.size}}, arena: make([]byte, tc.size)}
		out, _ := bus.pack(q, time.Now(), nil)
		var got []int
		sum := 0
		for _, p := range out {
			f, err := decodeFrag(p.Data[headerLen:])
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(f.Chunk))
			sum += len(f.Chunk)
		}
		if sum != tc.size || len(got) != len(tc.sizes) || got[0] != tc.sizes[0] || got[len(got)-1] != tc.sizes[len(tc.sizes)-1] {
			t.Errorf("%d bytes: chunks %v, want %v", tc.size, got, tc.sizes)
		}
		for _, n := range got[:len(got)-1] {
			if n != got[0] {
				t.Errorf("%d bytes: chunks %v not of one size", tc.size, got)
			}
		}
	}
}

// A retransmission is a copy: the history's buffer, once evicted, is
// reused for a new datagram, which must not change what a NAK queued.
func TestEvictedBuffersReused(t *testing.T) {
	cfg := Config{NodeName: "t", History: 3000}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	bus := &Bus{cfg: cfg, id: testNode, epoch: testEpoch, ackers: map[NodeID]*acker{}, cwnd: cwndInit}
	bus.keys.Store((*keyring)(nil))
	bus.hist.init()
	frame := make([]byte, 1300)
	pack := func(fill byte) []Packet {
		for i := range frame {
			frame[i] = fill
		}
		q := &sendQueue{recs: []qrec{{ch: "c", n: len(frame)}}, arena: frame}
		out, _ := bus.pack(q, time.Now(), nil)
		bus.wseq = bus.seq
		return out
	}
	first := pack(1)
	pack(2)
	nak := nakBody{Target: testNode, TargetEpoch: testEpoch, Ranges: []seqRange{{2, 2}}}
	if !bus.handleNak(netip.MustParseAddrPort("10.99.0.2:4454"), &nak, time.Now()) || len(bus.wout) != 1 {
		t.Fatalf("NAK for 2 queued %d datagrams", len(bus.wout))
	}
	resent := slices.Clone(bus.wout[0].Data)
	// Each datagram evicts the oldest (3,000 bytes of history), whose
	// buffer the next one reuses: 4 takes 1's, 5 takes 2's.
	pack(3)
	fourth := pack(4)
	pack(5)
	if !slices.Equal(bus.wout[0].Data, resent) {
		t.Fatal("the queued retransmission changed when its buffer was reused")
	}
	if &fourth[0].Data[0] != &first[0].Data[0] {
		t.Error("evicted buffers were not reused")
	}
}
