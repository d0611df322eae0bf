package netbus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// groCmsg builds the control message the kernel gives a coalesced read.
func groCmsg(size int) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_GRO
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(size))
	return b
}

func TestGROSize(t *testing.T) {
	other := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&other[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(4))
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", groCmsg(1400), 1400},
		{"after another", append(other, groCmsg(1092)...), 1092},
		{"another only", other, 0},
		{"truncated", groCmsg(1400)[:unix.CmsgLen(0)+2], 0},
		{"short", []byte{1, 2, 3}, 0},
		{"negative", groCmsg(-5), 0},
	} {
		if got := groSize(tc.oob); got != tc.want {
			t.Errorf("%s: groSize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzGRO: whatever control message a read carries, cutting the read
// into datagrams terminates, loses no byte, and makes every datagram but
// the last the announced size.
func FuzzGRO(f *testing.F) {
	f.Add(groCmsg(1400), 3000)
	f.Add(groCmsg(1), 5)
	f.Add(groCmsg(0), 100)
	f.Add(groCmsg(70000), 65536)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, oob []byte, n int) {
		n = min(max(n, 0), 1<<17)
		seg := groSize(oob)
		if seg < 0 {
			t.Fatalf("negative segment size %d", seg)
		}
		total, count := 0, 0
		for off := 0; ; {
			end := segmentEnd(n, off, seg)
			if end <= off && n > 0 || end > n {
				t.Fatalf("segmentEnd(%d, %d, %d) = %d", n, off, seg, end)
			}
			if seg > 0 && end < n && end-off != seg {
				t.Fatalf("datagram %d of %d bytes, segments of %d", count, end-off, seg)
			}
			total += end - off
			count++
			if end == n {
				break
			}
			off = end
		}
		if total != n || seg > 0 && count != max(1, (n+seg-1)/seg) {
			t.Fatalf("%d bytes cut in %d datagrams of %d: %d bytes", n, count, seg, total)
		}
	})
}

// pair opens a sending and a receiving transport on 127.0.0.1 in peers
// mode, the sender's group being the receiver.
func pair(t testing.TB, noOffload bool) (tx, rx *UDPTransport) {
	t.Helper()
	port := func() int {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	rp := port()
	rx, err := ListenUDP(UDPConfig{Port: rp, Peers: []string{fmt.Sprintf("127.0.0.1:%d", rp)}, NoOffload: noOffload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	tx, err = ListenUDP(UDPConfig{Port: port(), Peers: []string{fmt.Sprintf("127.0.0.1:%d", rp)}, NoOffload: noOffload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return tx, rx
}

// numbered returns datagrams of the given sizes, each starting with its
// index.
func numbered(sizes ...int) []Packet {
	ps := make([]Packet, len(sizes))
	for i, n := range sizes {
		ps[i].Data = bytes.Repeat([]byte{byte(i)}, n)
		binary.BigEndian.PutUint32(ps[i].Data, uint32(i))
	}
	return ps
}

// readAll reads want datagrams from rx (at most 10 s) and checks them
// against sent, in order (one flow on lo is not reordered).
func readAll(t *testing.T, rx *UDPTransport, sent []Packet) {
	t.Helper()
	ps := make([]Packet, 7) // fewer than a coalesced read holds: batches continue
	for i := range ps {
		ps[i].Data = make([]byte, 9000)
	}
	got := 0
	deadline := time.AfterFunc(10*time.Second, func() { rx.Close() })
	defer deadline.Stop()
	for got < len(sent) {
		for i := range ps {
			ps[i].Data = ps[i].Data[:cap(ps[i].Data)]
		}
		n, err := rx.ReadBatch(ps)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", got, len(sent), err)
		}
		for _, p := range ps[:n] {
			if !bytes.Equal(p.Data, sent[got].Data) {
				t.Fatalf("datagram %d: %d bytes starting %x, want %d starting %x", got, len(p.Data), p.Data[:min(4, len(p.Data))], len(sent[got].Data), sent[got].Data[:4])
			}
			got++
		}
	}
}

// The datagrams that arrive are those sent, whether GSO sends runs of
// them and GRO reads them coalesced or not; with offload, they were
// (127.0.0.1 only; needs Linux 5.0 for UDP_GRO).
func TestUDPOffload(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("nooffload=%v", off), func(t *testing.T) {
			tx, rx := pair(t, off)
			if gso, gro := tx.Offload(); gso == off || gro == off {
				t.Fatalf("offload: gso %v, gro %v", gso, gro)
			}
			var sizes []int
			for range 100 {
				sizes = append(sizes, 1400)
			}
			sizes = append(sizes, 700, 700, 1400, 1092, 1092, 1092, 1092, 100)
			sent := numbered(sizes...)
			if err := tx.WriteBatch(sent); err != nil {
				t.Fatal(err)
			}
			readAll(t, rx, sent)
			if coalesced := rx.CoalescedReads() > 0; coalesced == off {
				t.Errorf("coalesced reads: %d", rx.CoalescedReads())
			}
		})
	}
}

// When a GSO send fails as the path cannot do it (here: more segments
// than the kernel takes in one send), the datagrams go one by one, and
// GSO stays off.
func TestUDPGSOFallback(t *testing.T) {
	tx, rx := pair(t, false)
	tx.gsoSegs = 1000 // beyond UDP_MAX_SEGMENTS (64, or 128 since Linux 6.15): EINVAL
	sizes := make([]int, 300)
	for i := range sizes {
		sizes[i] = 8
	}
	sent := numbered(sizes...)
	if err := tx.WriteBatch(sent); err != nil {
		t.Fatal(err)
	}
	readAll(t, rx, sent)
	if gso, _ := tx.Offload(); gso {
		t.Error("GSO still on after a send it failed")
	}
	more := numbered(1400, 1400, 1400)
	if err := tx.WriteBatch(more); err != nil {
		t.Fatal(err)
	}
	readAll(t, rx, more)
}

// ReadLease lends the read buffers without a copy: what a lease holds
// stays intact while later datagrams are read, and released leases give
// the buffers back (20,000 datagrams through at most 8 read batches, 3
// leases held at a time: a lease that did not give its batch back would
// leave the readers without buffers, and the test would time out).
func TestUDPReadLease(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("nooffload=%v", off), func(t *testing.T) {
			tx, rx := pair(t, off)
			const total = 20000
			sent := numbered(slices.Repeat([]int{1400}, total)...)
			var leased atomic.Int64
			errc := make(chan error, 1)
			go func() {
				for i := 0; i < total; i += writeChunk {
					for int64(i)-leased.Load() > 2048 { // no overflow of rx's socket
						time.Sleep(100 * time.Microsecond)
					}
					if err := tx.WriteBatch(sent[i:min(i+writeChunk, total)]); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			type held struct {
				ps    []Packet
				lease Lease
				first int
			}
			var hold []held
			timer := time.AfterFunc(20*time.Second, func() { rx.Close() })
			defer timer.Stop()
			for got := 0; got < total; {
				ps := make([]Packet, 7)
				n, lease, err := rx.ReadLease(ps)
				if err != nil {
					t.Fatalf("after %d of %d: %v", got, total, err)
				}
				leased.Add(int64(n))
				hold = append(hold, held{ps[:n], lease, got})
				got += n
				if len(hold) > 3 {
					h := hold[0]
					for i, p := range h.ps {
						if !bytes.Equal(p.Data, sent[h.first+i].Data) {
							t.Fatalf("leased datagram %d changed while held", h.first+i)
						}
					}
					h.lease.Release()
					hold = hold[1:]
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
