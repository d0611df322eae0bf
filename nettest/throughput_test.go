//go:build linux

package nettest

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netns"
)

// BenchmarkNetnsThroughput measures the network layer between two
// namespaces (one netbus.Bus in each, over veth and a bridge, multicast)
// and prints a table: 128 B and 4 KiB messages, sealed and plaintext,
// without loss and with 5% random loss on the receiver, and with multicast
// loopback off (noloop: Config.NoLoopback, as when each host runs one
// node), with the process's CPU per message delivered (both nodes and the
// kernel's work in their system calls: a figure the machine's load moves
// less than the rates). N1 and N2 of BENCHMARKS.md are its sealed cases
// without loss, 128 B and 4 KiB. Each case is one
// measurement whatever b.N: it sends for at most 3 s (and at most a fixed
// count), then waits at most 10 s for the tail. Run it with:
//
//	NETCLUSTER_NETNS=1 go test -run x -bench NetnsThroughput -benchtime 1x -v ./nettest/
func BenchmarkNetnsThroughput(bb *testing.B) {
	t := bb
	netns.Skip(t)
	type result struct {
		name                    string
		sent, got, lost         uint64
		retrans, recov, dropped uint64
		dur                     time.Duration
		size                    int
		cpu                     time.Duration // the process's CPU (both nodes, user and system)
	}
	var rows []result
	for _, tc := range []struct {
		size   int
		sealed bool
		loss   int  // % of incoming UDP packets dropped at random at the receiver (with GRO, a packet is a run of datagrams)
		max    int  // messages at most
		rate   int  // messages/s offered; 0: as fast as Send takes them
		noloop bool // Config.NoLoopback: each host runs one node
	}{
		{128, true, 0, 5_000_000, 0, false},
		{128, true, 0, 5_000_000, 0, true},
		{128, false, 0, 5_000_000, 0, false},
		{4096, true, 0, 500_000, 0, false},
		{4096, true, 0, 500_000, 0, true},
		{4096, false, 0, 500_000, 0, false},
		{128, true, 5, 5_000_000, 0, false},
		{128, true, 5, 5_000_000, 200_000, false},
		{4096, true, 5, 500_000, 0, false},
		{4096, true, 5, 500_000, 8_000, false},
	} {
		name := fmt.Sprintf("%dB/sealed=%v/loss=%d%%/rate=%d", tc.size, tc.sealed, tc.loss, tc.rate)
		if tc.rate == 0 {
			name = fmt.Sprintf("%dB/sealed=%v/loss=%d%%/max", tc.size, tc.sealed, tc.loss)
		}
		if tc.noloop {
			name += "/noloop"
		}
		t.Run(name, func(t *testing.B) {
			nt := netns.New(t, 2)
			if tc.loss > 0 {
				if err := nt.Hosts[1].DropInput(tc.loss, "meta l4proto udp"); err != nil {
					t.Fatal(err)
				}
			}
			var got atomic.Uint64
			var bad atomic.Uint64
			var next uint64 // the lowest message number expected next
			deliver := func(_ netbus.Peer, _ string, frame []byte) {
				// Every frame carries its number: numbers only grow (a
				// gap is a loss, counted by the Bus).
				n := uint64(frame[0])<<24 | uint64(frame[1])<<16 | uint64(frame[2])<<8 | uint64(frame[3])
				if n < next {
					bad.Add(1)
				}
				next = n + 1
				got.Add(1)
			}
			buses := make([]*netbus.Bus, 2)
			for i, h := range nt.Hosts {
				cfg := netbus.Config{Interface: "eth0", NodeName: h.Name, NoLoopback: tc.noloop}
				if tc.sealed {
					cfg.Keys = []netbus.Key{{ID: 1, Secret: make([]byte, 32)}}
				}
				d := deliver
				if i == 0 {
					d = func(netbus.Peer, string, []byte) {}
				}
				err := h.Do(func() error {
					b, err := netbus.New(cfg, d)
					buses[i] = b
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { buses[i].Close() })
			}
			// Let the receiver know the sender before the stream starts.
			waitFor(t, 5*time.Second, "peers", func() bool { return len(buses[1].Stats().Peers) == 1 })
			frame := make([]byte, tc.size)
			cpu0 := processCPU()
			start := time.Now()
			stop := start.Add(3 * time.Second)
			var sent uint64
			for sent < uint64(tc.max) && (sent%256 != 0 || time.Now().Before(stop)) {
				if tc.rate > 0 && sent%1000 == 0 {
					if ahead := time.Duration(sent) * time.Second / time.Duration(tc.rate); ahead > time.Since(start) {
						time.Sleep(ahead - time.Since(start))
					}
				}
				frame[0], frame[1], frame[2], frame[3] = byte(sent>>24), byte(sent>>16), byte(sent>>8), byte(sent)
				err := buses[0].Send("bench", frame)
				if errors.Is(err, netbus.ErrQueueFull) {
					time.Sleep(20 * time.Microsecond)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				sent++
			}
			deadline := time.Now().Add(10 * time.Second)
			var lost uint64
			for time.Now().Before(deadline) {
				ps := buses[1].Stats().Peers
				if len(ps) == 1 {
					lost = ps[0].LostMessages
				}
				if got.Load()+lost >= sent {
					break
				}
				time.Sleep(time.Millisecond)
			}
			dur := time.Since(start)
			cpu := processCPU() - cpu0
			st := buses[1].Stats()
			r := result{name: name, sent: sent, got: got.Load(), dur: dur, size: tc.size, cpu: cpu, retrans: buses[0].Stats().Sent.Retransmits}
			if len(st.Peers) == 1 {
				r.lost, r.recov = st.Peers[0].LostMessages, st.Peers[0].Recovered
			}
			if tc.loss > 0 {
				out, _ := nt.Hosts[1].Run("nft", "list", "table", "inet", "ncloss")
				fmt.Sscanf(out[strings.Index(out, "counter packets")+len("counter packets"):], "%d", &r.dropped)
			}
			rows = append(rows, r)
			if testing.Verbose() && len(st.Peers) == 1 {
				ps := st.Peers[0]
				ss := buses[0].Stats().Sent
				t.Logf("receiver: lost datagrams %d, late %d, naks %d, duplicates %d, rejected %v, echoes %d; sender: datagrams %d, unavailable %d, naks in %d, queue full %d, window waits %d, cuts %d, window %d, echoes %d",
					ps.LostDatagrams, ps.Late, ps.NaksSent, ps.Duplicates, st.Rejected, st.Echoes, ss.Datagrams, ss.Unavailable, ss.NaksReceived, ss.QueueFull, ss.WindowWaits, ss.WindowCuts, ss.Window, buses[0].Stats().Echoes)
			}
			t.ReportMetric(float64(r.got)/dur.Seconds(), "msgs/s")
			t.ReportMetric(float64(r.got)*float64(r.size)/dur.Seconds()/1e6, "MB/s")
			t.ReportMetric(float64(r.lost), "lost")
			t.ReportMetric(float64(cpu.Nanoseconds())/float64(max(r.got, 1)), "cpu-ns/msg")
			// Every message is delivered once, in order, or counted lost.
			// At full speed the sender may outrun the receiver (both share
			// this machine's CPUs; there is no flow control), so losses
			// are figures, reported; TestNetnsLoss checks that none are
			// lost at 5% drop through ncserver.
			if bad.Load() != 0 || r.got+r.lost != r.sent {
				t.Errorf("sent %d, delivered %d, lost %d, duplicated or out of order %d", r.sent, r.got, r.lost, bad.Load())
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nnetbus between two namespaces (veth + bridge, multicast, XChaCha20-Poly1305 when sealed)\n")
	fmt.Fprintf(&b, "%-42s %10s %10s %12s %9s %8s %9s %9s %6s %11s\n", "case", "sent", "delivered", "msgs/s", "MB/s", "dropped", "retrans", "recovered", "lost", "cpu ns/msg")
	for _, r := range rows {
		s := r.dur.Seconds()
		fmt.Fprintf(&b, "%-42s %10d %10d %12.0f %9.1f %8d %9d %9d %6d %11.0f\n", r.name, r.sent, r.got,
			float64(r.got)/s, float64(r.got)*float64(r.size)/s/1e6, r.dropped, r.retrans, r.recov, r.lost,
			float64(r.cpu.Nanoseconds())/float64(max(r.got, 1)))
	}
	t.Log(b.String())
}

// processCPU is the CPU time this process has used, user and system: both
// nodes of a case, and the kernel's work done on their behalf (sends,
// receives, and the veth and bridge between them when it runs in their
// system calls).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
