//go:build linux

package nettest

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netns"
)

// attackMemory is the receiver's netmemory: small, so the forged
// sessions reach it.
const attackMemory = 4 << 20

// Attack sizes.
const (
	forgedNodes = 1000 // forged sessions (plaintext), or forged heartbeats (sealed)
	takeovers   = 50   // heartbeats, and as many data datagrams, claiming A's node id
	junkEach    = 2000 // junk datagrams of each kind (bad magic, truncated, bad version)
)

// chaosNet is what both attack tests start with: A emitting to B, and
// the attacker recording, on one bridge.
type chaosNet struct {
	nt       *netns.Net
	bin      string
	sA, sB   *server
	lB       *listener
	att      *attacker
	a        [8]byte        // A's node id
	epochA   uint64         // its session, learnt from its datagrams
	bUnicast netip.AddrPort // B's unicast socket, learnt from its datagrams
}

// newChaosNet starts hosts A, B (netmemory attackMemory), extra hosts
// left to the test, and the attacker on the last host.
func newChaosNet(t *testing.T, hosts int, keys string) *chaosNet {
	start := time.Now()
	c := &chaosNet{bin: buildServer(t)}
	built := time.Now()
	c.nt = netns.New(t, hosts)
	t.Logf("ncserver built in %v, %d namespaces made in %v", built.Sub(start).Round(time.Millisecond), hosts+1, time.Since(built).Round(time.Millisecond))
	cfg := `"netmemory": ` + strconv.Itoa(attackMemory) + `, "channels": {"A": {"propagatetonet": true}}}`
	c.sA = startServer(t, c.bin, c.nt.Hosts[0], `{`+netConfig(c.nt.Hosts[0], keys)+` "channels": {"A": {"propagatetonet": true}}}`)
	c.sB = startServer(t, c.bin, c.nt.Hosts[1], `{`+netConfig(c.nt.Hosts[1], keys)+cfg)
	c.lB = c.sB.listener(t, "A")
	c.att = newAttacker(t, c.nt.Hosts[hosts-1])
	c.att.record(true)
	waitPeers(t, c.sB, c.sA.node)
	c.a = nodeID(t, c.sA.node)
	b := nodeID(t, c.sB.node)
	waitFor(t, 10*time.Second, "the attacker to hear A and B", func() bool {
		return len(c.att.from(c.a)) > 0 && len(c.att.from(b)) > 0
	})
	c.epochA = binary.BigEndian.Uint64(c.att.from(c.a)[0].data[18:])
	c.bUnicast = c.att.from(b)[0].from
	return c
}

// stream emits numbered messages from A ("seq" 0, 1, ...) until stop is
// called, at most 200,000 of them and for at most 60 s; stop returns how
// many it emitted. The test's end stops it too.
func (c *chaosNet) stream(t *testing.T) (stop func() int) {
	e := c.sA.agent(t, "A")
	quit, count := make(chan struct{}), make(chan int, 1)
	go func() {
		n, end := 0, time.Now().Add(60*time.Second)
		for ; n < 200000 && time.Now().Before(end); n++ {
			select {
			case <-quit:
				count <- n
				return
			default:
			}
			if err := emitE(e, "seq", n, n+1); err != nil {
				t.Error(err)
				break
			}
			if n%200 == 199 {
				time.Sleep(time.Millisecond) // share the CPUs with the attack
			}
		}
		<-quit
		count <- n
	}()
	var once sync.Once
	n := 0
	stop = func() int {
		once.Do(func() {
			close(quit)
			n = <-count
		})
		return n
	}
	t.Cleanup(func() { stop() }) // before the agent closes
	return stop
}

// checkStream waits for B to get the n messages A emitted and checks
// them: every one exactly once, in order, none counted lost.
func (c *chaosNet) checkStream(t *testing.T, n int, took time.Duration) control.NetPeerStats {
	waitCount(t, "B: A's stream", n, c.sA.node, "seq", c.lB.count)
	time.Sleep(200 * time.Millisecond) // duplicates would show now
	checkSpans(t, "B from A under attack", c.lB.seqs(t, c.sA.node, "seq"), span{0, n})
	p := peerCounts(t, c.sB, c.sA.node)
	if p.LostMessages != 0 || p.LostDatagrams != 0 || p.Restarts != 0 {
		t.Errorf("B's figures for A: %+v; want no loss, no restart", p)
	}
	t.Logf("healthy stream A→B under attack: %d messages in %v (%.0f msgs/s), none lost, recovered %d datagrams", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), p.Recovered)
	return p
}

// junk returns junkEach datagrams each of bad magic, truncated headers
// and an unknown version.
func junk() [][]byte {
	var ds [][]byte
	for i := range junkEach {
		b := bytes.Repeat([]byte{byte(i)}, 40+i%900)
		b[0] = 'X'
		ds = append(ds, b)
		ds = append(ds, append([]byte("NC\x01\x05"), bytes.Repeat([]byte{byte(i)}, i%30)...))
		v := bytes.Repeat([]byte{byte(i)}, 60)
		v[0], v[1], v[2] = 'N', 'C', 9
		ds = append(ds, v)
	}
	return ds
}

// waitRejected waits until st's refusals reach want, reason by reason,
// and fails if one goes beyond it.
func (c *chaosNet) waitRejected(t *testing.T, base, want map[string]uint64) *control.NetStats {
	t.Helper()
	var st *control.NetStats
	waitStats(t, 30*time.Second, "B to count every forged datagram", func() bool {
		st = c.sB.netStats(t)
		ok := true
		for r, n := range want {
			got := st.Rejected[r] - base[r]
			if got > n {
				t.Fatalf("B refused %d datagrams as %q, want %d: %v", got, r, n, st.Rejected)
			}
			ok = ok && got == n
		}
		return ok
	})
	return st
}

// TestNetnsChaosAttackPlaintext: an attacker on the bridge of a
// plaintext network forges 1,000 sessions (each announcing 2^40
// datagrams, then a data datagram far ahead), tries to take over A's node
// id with a higher epoch, and floods junk, while A streams to B. B's
// stream loses nothing, B's accounted memory stays within its netmemory,
// and every takeover and junk datagram is counted by its reason, exactly.
func TestNetnsChaosAttackPlaintext(t *testing.T) {
	netns.Skip(t)
	start := time.Now()
	c := newChaosNet(t, 3, "")
	stop := c.stream(t)
	began := time.Now()
	base := c.sB.netStats(t).Rejected

	var forged [][]byte
	for i := range forgedNodes {
		id := [8]byte{0xf0, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		ep := uint64(time.Now().UnixNano())
		forged = append(forged,
			dgram(kindTimedBeat, id, ep, ctrlBit|1, timedBeat(0), nil),
			dgram(kindTimedBeat, id, ep, ctrlBit|2, timedBeat(1<<40), nil),
			dgram(kindData, id, ep, 1<<40-1-uint64(i*7919)%16000, dataBody(0, "A", "forged"), nil))
	}
	c.att.sendAll(t, c.bUnicast, forged)
	var take [][]byte
	for i := range takeovers {
		take = append(take,
			dgram(kindTimedBeat, c.a, c.epochA+1, ctrlBit|uint64(i+1), timedBeat(uint64(i)), nil),
			dgram(kindData, c.a, c.epochA+1, uint64(i+1), dataBody(uint64(i), "A", "takeover"), nil))
	}
	c.att.sendAll(t, c.bUnicast, take)
	c.att.sendAll(t, c.bUnicast, junk())
	st := c.waitRejected(t, base, map[string]uint64{
		"takeover": 2 * takeovers, "bad-magic": junkEach, "truncated": junkEach, "bad-version": junkEach,
	})
	n := stop()
	took := time.Since(began)
	c.checkStream(t, n, took)

	st = c.sB.netStats(t)
	if st.MemoryLimit != attackMemory || st.Memory > st.MemoryLimit {
		t.Errorf("B holds %d bytes for other nodes, limit %d; want at most %d", st.Memory, st.MemoryLimit, attackMemory)
	}
	if st.Rejected["memory"] == 0 {
		t.Errorf("no datagram refused for memory: the forged sessions did not reach the bound (%v)", st.Rejected)
	}
	if got := c.lB.count(c.sA.node, "takeover"); got != 0 {
		t.Errorf("B delivered %d messages of the takeover attempt", got)
	}
	rss, peak := c.sB.rss(t)
	t.Logf("B: %d peers, memory %d of %d bytes, evicted %d, rejected %v; RSS %.1f MiB (peak %.1f MiB); %v in all",
		len(st.Peers), st.Memory, st.MemoryLimit, st.Evicted, st.Rejected, float64(rss)/(1<<20), float64(peak)/(1<<20), time.Since(start).Round(time.Millisecond))
}

// TestNetnsChaosAttackSealed: on a sealed network, while A streams to B,
// the attacker sends plaintext heartbeats, heartbeats sealed with a
// wrong key and with an unknown key id, a takeover attempt with A's node
// id and a higher epoch (sealed with the wrong key), junk, and replays
// the sealed datagrams it recorded of node R's session to V, a receiver
// restarted since R stopped, and those it recorded of A's stream since
// then, A still alive. B's stream loses nothing, V delivers none of the
// replayed messages and B none again (each of A's messages reaches them
// once), and every forged datagram is counted by its reason, exactly.
func TestNetnsChaosAttackSealed(t *testing.T) {
	netns.Skip(t)
	start := time.Now()
	// A, B, R (recorded sender), V (restarted receiver), attacker.
	c := newChaosNet(t, 5, key1)
	hR, hV := c.nt.Hosts[2], c.nt.Hosts[3]
	cfg := func(h *netns.Host) string {
		return `{` + netConfig(h, key1) + ` "channels": {"A": {"propagatetonet": true}}}`
	}
	sR := startServer(t, c.bin, hR, cfg(hR))
	sV := startServer(t, c.bin, hV, cfg(hV))
	lV := sV.listener(t, "A")
	waitPeers(t, sV, sR.node)
	waitPeers(t, c.sB, sR.node)

	// R's session, recorded: 2,000 messages that B and V get once.
	const recN = 2000
	emit(t, sR.agent(t, "A"), "rec", 0, recN)
	waitCount(t, "B and V: R's messages", recN, sR.node, "rec", c.lB.count, lV.count)
	sR.stop(t) // its last heartbeat, recorded too
	time.Sleep(300 * time.Millisecond)
	rec := c.att.from(nodeID(t, sR.node))
	var beats, data uint64
	var replay [][]byte
	for _, r := range rec {
		switch r.data[3] {
		case kindTimedBeat:
			beats++
		case kindData:
			data++
		default:
			t.Fatalf("recorded a datagram of kind %d from R", r.data[3])
		}
		replay = append(replay, r.data)
	}
	if data == 0 || beats == 0 {
		t.Fatalf("recorded %d data and %d heartbeats of R", data, beats)
	}

	// V restarts: a new process that has not seen R's session.
	sV.stop(t)
	sV = sV.restart(t, c.bin)
	lV.flush(t)
	c.att.reset() // from now on: A's stream, recorded while A lives
	stop := c.stream(t)
	began := time.Now()
	// V follows A's stream before the replay: A's first datagrams before
	// its first heartbeat may be refused as unfresh, which is not the
	// attacker's doing.
	waitStats(t, 20*time.Second, "V to follow A", func() bool { return peerCounts(t, sV, c.sA.node).Delivered > 0 })
	baseV := sV.netStats(t).Rejected
	base := c.sB.netStats(t).Rejected

	wrong := &netbus.Key{ID: 1, Secret: bytes.Repeat([]byte{0x5a}, 32)}
	unknown := &netbus.Key{ID: 9, Secret: bytes.Repeat([]byte{0x5a}, 32)}
	var forged [][]byte
	for i := range forgedNodes {
		id := [8]byte{0xf0, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		ep := uint64(time.Now().UnixNano())
		forged = append(forged,
			dgram(kindTimedBeat, id, ep, ctrlBit|1, timedBeat(1<<40), nil),
			dgram(kindTimedBeat, id, ep, ctrlBit|2, timedBeat(1<<40), wrong),
			dgram(kindTimedBeat, id, ep, ctrlBit|3, timedBeat(1<<40), unknown))
	}
	for i := range takeovers {
		forged = append(forged,
			dgram(kindTimedBeat, c.a, c.epochA+1, ctrlBit|uint64(i+1), timedBeat(uint64(i)), wrong),
			dgram(kindData, c.a, c.epochA+1, uint64(i+1), dataBody(uint64(i), "A", "takeover"), wrong))
	}
	c.att.sendAll(t, c.bUnicast, forged)
	c.att.sendAll(t, c.bUnicast, junk())
	// The replay goes to the group: V refuses it as stale (heartbeats
	// sent before it started) and unfresh (data of a session without a
	// heartbeat since); B, which knew R's session, as seen before.
	c.att.sendAll(t, groupAddr, replay)
	// A's own datagrams, recorded since V restarted, replayed while A is
	// alive: B and V have seen them (duplicates, or older than the
	// window) and deliver none again; checkStream and V's listener say.
	var replayA [][]byte
	for _, r := range c.att.from(c.a) {
		replayA = append(replayA, r.data)
	}
	c.att.record(false)
	c.att.sendAll(t, groupAddr, replayA)
	c.waitRejected(t, base, map[string]uint64{
		"plaintext": forgedNodes, "auth": forgedNodes + 2*takeovers, "unknown-key": forgedNodes,
		"bad-magic": junkEach, "truncated": junkEach, "bad-version": junkEach,
	})
	waitStats(t, 30*time.Second, "V to count the replay", func() bool {
		r := sV.netStats(t).Rejected
		return r["stale-time"]-baseV["stale-time"] == beats && r["unfresh"]-baseV["unfresh"] == data
	})
	n := stop()
	took := time.Since(began)
	c.checkStream(t, n, took)

	// V follows A from where it first heard it, without a gap, and gets
	// nothing of the replay again.
	waitFor(t, 30*time.Second, "V: A's stream", func() bool {
		got := lV.seqs(t, c.sA.node, "seq")
		if len(got) == 0 || got[len(got)-1] != n-1 {
			time.Sleep(20 * time.Millisecond)
			return false
		}
		return true
	})
	gotV := lV.seqs(t, c.sA.node, "seq")
	checkSpans(t, "V from A", gotV, span{gotV[0], n})
	if got := lV.count(sR.node, "rec"); got != recN {
		t.Errorf("V delivered %d of R's messages, want the %d of before its restart: the replay was delivered", got, recN)
	}
	if got := c.lB.count(sR.node, "rec"); got != recN {
		t.Errorf("B delivered %d of R's messages, want %d: the replay was delivered again", got, recN)
	}
	if got := c.lB.count(c.sA.node, "takeover"); got != 0 {
		t.Errorf("B delivered %d messages of the takeover attempt", got)
	}
	stV := sV.netStats(t)
	for _, r := range []string{"stale-time", "unfresh"} {
		if d := stV.Rejected[r] - baseV[r]; d != map[string]uint64{"stale-time": beats, "unfresh": data}[r] {
			t.Errorf("V refused %d replayed datagrams as %s", d, r)
		}
	}
	st := c.sB.netStats(t)
	if st.Memory > st.MemoryLimit || st.MemoryLimit != attackMemory {
		t.Errorf("B holds %d bytes for other nodes, limit %d; want at most %d", st.Memory, st.MemoryLimit, attackMemory)
	}
	if p, _ := peerOf(st, c.sA.node); p.Restarts != 0 {
		t.Errorf("B took A's node id for a new session: %+v", p)
	}
	rss, peak := c.sB.rss(t)
	t.Logf("replayed %d datagrams of R, stopped (%d data, %d heartbeats): V refused %d stale-time + %d unfresh, delivered 0 again; replayed %d of A, alive: delivered 0 again (V got A's %d..%d once each); B: memory %d of %d bytes, rejected %v; RSS %.1f MiB (peak %.1f MiB); %v in all",
		len(replay), data, beats, stV.Rejected["stale-time"]-baseV["stale-time"], stV.Rejected["unfresh"]-baseV["unfresh"], len(replayA), gotV[0], n-1,
		st.Memory, st.MemoryLimit, st.Rejected, float64(rss)/(1<<20), float64(peak)/(1<<20), time.Since(start).Round(time.Millisecond))
}
