package netbus

import (
	"net/netip"
	"slices"
	"testing"
)

func TestGSORuns(t *testing.T) {
	a := netip.MustParseAddrPort("10.99.0.2:4454")
	b := netip.MustParseAddrPort("10.99.0.3:4454")
	pk := func(n int, addr netip.AddrPort) Packet { return Packet{Data: make([]byte, n), Addr: addr} }
	group := func(sizes ...int) []Packet {
		ps := make([]Packet, len(sizes))
		for i, n := range sizes {
			ps[i] = pk(n, netip.AddrPort{})
		}
		return ps
	}
	many := func(n, size int) []int { return slices.Repeat([]int{size}, n) }
	for _, tc := range []struct {
		name string
		ps   []Packet
		segs int
		want []run
	}{
		{"one", group(100), 64, []run{{0, 1}}},
		{"equal", group(100, 100, 100), 64, []run{{0, 3}}},
		{"shorter last", group(100, 100, 40), 64, []run{{0, 3}}},
		{"shorter ends the run", group(100, 40, 100, 100), 64, []run{{0, 2}, {2, 4}}},
		{"longer starts a run", group(100, 100, 120, 120), 64, []run{{0, 2}, {2, 4}}},
		{"fragments of 4 KiB messages", group(1092, 1092, 1092, 1092, 1092, 1092), 64, []run{{0, 6}}},
		{"destinations", []Packet{pk(100, a), pk(100, a), pk(100, b), pk(100, netip.AddrPort{}), pk(100, netip.AddrPort{})}, 64,
			[]run{{0, 2}, {2, 3}, {3, 5}}},
		{"empty datagrams alone", group(0, 0, 100, 0), 64, []run{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{"segment limit", group(many(130, 10)...), 64, []run{{0, 64}, {64, 128}, {128, 130}}},
		{"byte limit", group(many(50, 1400)...), 64, []run{{0, 46}, {46, 50}}},
		{"off", group(100, 100), 0, []run{{0, 1}, {1, 2}}},
		{"one segment is off", group(100, 100), 1, []run{{0, 1}, {1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := gsoRuns(tc.ps, tc.segs, nil)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("runs %v, want %v", got, tc.want)
			}
			for _, r := range got {
				total := 0
				for _, p := range tc.ps[r.first:r.end] {
					total += len(p.Data)
				}
				if total > gsoMaxBytes {
					t.Errorf("run %v has %d bytes", r, total)
				}
			}
		})
	}
}
