//go:build linux

package nettest

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netns"
	"github.com/netcluster/netcluster/internal/wire"
)

// The attacker of chaos_attack_test.go: a host of the test network that
// records the group's datagrams and sends datagrams it builds itself from
// docs/PROTOCOL.md, section 10 (not with package netbus: what an attacker
// would do, and an independent reading of the format).

// Datagram kinds and layout (PROTOCOL.md section 10).
const (
	kindData      = 1
	kindTimedBeat = 5
	ctrlBit       = uint64(1) << 63
	headerLen     = 34
)

// dgram returns a datagram's header and body: plaintext, or sealed with
// key (flags bit 0, key id, XChaCha20-Poly1305 over the body with the
// header as associated data and header bytes 10..33 as nonce).
func dgram(kind uint8, node [8]byte, epoch, seq uint64, body []byte, key *netbus.Key) []byte {
	h := []byte{'N', 'C', 1, kind, 0, 0, 0, 0, 0, 0}
	h = append(h, node[:]...)
	h = binary.BigEndian.AppendUint64(h, epoch)
	h = binary.BigEndian.AppendUint64(h, seq)
	if key == nil {
		return append(h, body...)
	}
	h[4], h[5] = 1, key.ID
	a, err := chacha20poly1305.NewX(key.Secret)
	if err != nil {
		panic(err)
	}
	return a.Seal(h, h[10:headerLen], body, h)
}

// timedBeat is a TIMED HEARTBEAT body sent now, announcing lastSeq.
func timedBeat(lastSeq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	b = binary.BigEndian.AppendUint64(b, lastSeq)
	b = binary.BigEndian.AppendUint64(b, 1)       // oldest
	b = binary.BigEndian.AppendUint64(b, lastSeq) // next message
	return append(b, 6, 'f', 'o', 'r', 'g', 'e', 'd')
}

// dataBody is a DATA body of one message, number msg: a valid message
// frame of event ev on channel.
func dataBody(msg uint64, channel, ev string) []byte {
	frame := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagJSON, Channel: channel, Agent: "forged", Event: ev, Data: []byte("-1")})
	b := binary.BigEndian.AppendUint64(nil, msg)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = append(b, byte(len(channel)))
	b = append(b, channel...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(frame)))
	return append(b, frame...)
}

// nodeID parses an ncserver's node id (16 hex digits).
func nodeID(t testing.TB, s string) (id [8]byte) {
	t.Helper()
	if n, err := hex.Decode(id[:], []byte(s)); err != nil || n != 8 {
		t.Fatalf("node id %q: %v", s, err)
	}
	return id
}

// recorded is a datagram the attacker heard on the group.
type recorded struct {
	data []byte
	from netip.AddrPort
}

// attacker sends from its host's address and records what the group
// carries while recording is on.
type attacker struct {
	send  *net.UDPConn
	group *net.UDPConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	on    bool
	recs  []recorded
}

// newAttacker opens the attacker's sockets inside h: one to send, one
// joined to the group (default group and port) on h's eth0.
func newAttacker(t testing.TB, h *netns.Host) *attacker {
	t.Helper()
	a := &attacker{}
	err := h.Do(func() error {
		var err error
		a.send, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(h.Addr)})
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(h.Dev)
		if err != nil {
			return err
		}
		a.group, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.ParseIP(netbus.DefaultGroup), Port: netbus.DefaultPort})
		return err
	})
	if err != nil {
		t.Fatalf("attacker in %s: %v", h.Name, err)
	}
	a.group.SetReadBuffer(8 << 20)
	a.wg.Add(1)
	go a.read()
	t.Cleanup(func() {
		a.send.Close()
		a.group.Close()
		a.wg.Wait()
	})
	return a
}

func (a *attacker) read() {
	defer a.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := a.group.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.on {
			a.recs = append(a.recs, recorded{append([]byte(nil), buf[:n]...), from})
		}
		a.mu.Unlock()
	}
}

// record turns recording on or off.
func (a *attacker) record(on bool) {
	a.mu.Lock()
	a.on = on
	a.mu.Unlock()
}

// reset forgets what was recorded.
func (a *attacker) reset() {
	a.mu.Lock()
	a.recs = nil
	a.mu.Unlock()
}

// from returns the recorded datagrams of node, in the order heard.
func (a *attacker) from(node [8]byte) []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []recorded
	for _, r := range a.recs {
		if len(r.data) >= headerLen && [8]byte(r.data[10:18]) == node {
			out = append(out, r)
		}
	}
	return out
}

// sendAll sends ds to dst, 64 at a time with a pause in between, so the
// receiver's socket buffer never overflows (exact counts).
func (a *attacker) sendAll(t testing.TB, dst netip.AddrPort, ds [][]byte) {
	t.Helper()
	for i, d := range ds {
		for try := 0; ; try++ {
			_, err := a.send.WriteToUDPAddrPort(d, dst)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, syscall.EAGAIN) || try == 100 {
				t.Fatalf("attacker: send to %v: %v", dst, err)
			}
			time.Sleep(time.Millisecond)
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond)
		}
	}
}

// groupAddr is the default group and port.
var groupAddr = netip.AddrPortFrom(netip.MustParseAddr(netbus.DefaultGroup), netbus.DefaultPort)
