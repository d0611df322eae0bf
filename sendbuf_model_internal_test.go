package netcluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestSendBufferModel drives the send buffer (Emit, calls, the writer's
// Take and Wrote, acknowledgements, failed writes, reconnections, Idle) in
// random orders and checks what a server would get: on each connection the
// messages not acknowledged, then the new ones, each number once and in
// order, with the data it was emitted with; every message (numbered or not,
// call or not) first arriving in the order it was emitted, across failed
// writes and reconnections, and only a numbered one arriving twice; no
// batch changes while it is being written; at the end every message has
// arrived.
func TestSendBufferModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		modelRun(t, seed)
		if t.Failed() {
			return
		}
	}
}

func modelRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	a := testSender(t)
	a.opts.bufferSize = 320 << 10
	q := sendQueue{a}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	sizes := []int{16, 128, 900, 5000, 20000, 40000, 70000}
	emitted := map[uint64][]byte{}
	idOf := map[uint64]uint64{}   // message ids by number
	numbered := map[uint64]bool{} // the ids emitted with a number
	pattern := make([]byte, 70000)
	for i := range pattern {
		pattern[i] = byte(rng.Uint32())
	}
	dataOf := func(seq uint64, n int) []byte {
		d := append([]byte(nil), pattern[:n]...)
		if n >= 16 {
			binary.BigEndian.PutUint64(d, seq)
			binary.BigEndian.PutUint64(d[n-8:], seq)
		}
		return d
	}
	// Each message's data starts and ends with its id, the count of
	// messages Emit accepted: on a connection without acknowledgements
	// they go as Msg frames, without a number.
	var ids uint64
	var trace []string
	logf := func(format string, args ...any) { trace = append(trace, fmt.Sprintf(format, args...)) }
	defer func() {
		if t.Failed() {
			for _, l := range trace[max(0, len(trace)-400):] {
				t.Log(l)
			}
		}
	}()
	emitOne := func(n int) {
		d := dataOf(ids+1, n)
		if err := a.EmitRaw(cancelled, "ev", d); err == nil {
			ids++
			emitted[ids] = d
			a.mu.Lock()
			if a.version >= wire.VersionAcks {
				idOf[a.seq] = ids
				numbered[ids] = true
			}
			a.mu.Unlock()
		}
	}
	// A call is a message without a number, sent again on the next
	// connection in its place among the others (resendLocked).
	var calls uint64
	callOne := func(n int) {
		a.mu.Lock()
		defer a.mu.Unlock()
		d := dataOf(ids+1, n)
		calls++
		a.queueFrame(wire.AppendCall(a.out, calls, &wire.Msg{Channel: a.channel, Agent: a.id, Event: "ask", Data: d}))
		ids++
		emitted[ids] = d
	}
	// The server's side: the numbers of each connection must follow one
	// another from the one after the last acknowledged (firstDue); every
	// message, numbered or not (a Msg frame, to a server that does not
	// acknowledge), must arrive with its data.
	var next uint64     // the number due next on this connection, 0 before its first
	var firstDue uint64 // what the first number of a connection must be
	var got uint64      // the highest number received on this connection
	delivered := map[uint64]bool{}
	var newest uint64 // the highest id delivered
	acks := true      // the connection acknowledges
	connected := true
	firstDue = 1
	receive := func(buf []byte) {
		for f := range wire.Frames(buf) {
			var v wire.MsgView
			var seq uint64
			var err error
			switch f.Type {
			case wire.TypeSeqMsg:
				_, seq, v, err = wire.ParseSeqMsg(f.Payload)
				if !acks {
					t.Fatalf("seed %d: a SeqMsg to a server that does not acknowledge", seed)
				}
			case wire.TypeMsg:
				v, err = wire.ParseMsg(f.Payload)
			case wire.TypeCall:
				_, v, err = wire.ParseCall(f.Payload)
			default:
				continue
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			id := binary.BigEndian.Uint64(v.Data)
			if want, ok := emitted[id]; !ok || !bytes.Equal(v.Data, want) {
				t.Fatalf("seed %d: message %d arrived with other data (%d bytes, want %d)", seed, id, len(v.Data), len(want))
			}
			// Each message first arrives in the order it was emitted,
			// whatever connection, frame or failed write it went through;
			// only one with a number may arrive again (its receivers drop
			// it, or, sent as a Msg to a server that does not acknowledge,
			// at least once), never a call or an unnumbered message.
			if !delivered[id] {
				if id != newest+1 {
					t.Fatalf("seed %d: message %d arrived after %d", seed, id, newest)
				}
				newest = id
			} else if !numbered[id] {
				t.Fatalf("seed %d: message %d (%v, not numbered) arrived twice", seed, id, f.Type)
			}
			delivered[id] = true
			if seq == 0 {
				continue
			}
			if idOf[seq] != id {
				t.Fatalf("seed %d: message %d numbered %d, which was %d's", seed, id, seq, idOf[seq])
			}
			if next == 0 {
				if seq != firstDue {
					t.Fatalf("seed %d: a connection starts with number %d, want %d", seed, seq, firstDue)
				}
			} else if seq != next {
				t.Fatalf("seed %d: number %d where %d was due", seed, seq, next)
			}
			next = seq + 1
			got = max(got, seq)
		}
	}
	ack := func() {
		if got > 0 && acks {
			logf("ack %d", got)
			a.onAck(got)
		}
	}
	var spare []byte
	reconnect := func() {
		version := byte(wire.VersionGaps)
		if rng.IntN(4) == 0 {
			version = wire.VersionCalls
		}
		acks = version >= wire.VersionAcks
		a.mu.Lock()
		firstDue = a.acked + 1
		c1, c2 := net.Pipe()
		c1.Close()
		c2.Close()
		logf("attach v%d: ids %d, delivered %d, seq %d, acked %d, sent %d, queued %d, out %d", version, ids, len(delivered), a.seq, a.acked, len(a.sent), len(a.queued), len(a.out))
		a.attach(c1, wire.Welcome{Version: version, MaxFrame: wire.DefaultMaxFrame})
		a.mu.Unlock()
		next, got, connected, spare = 0, 0, true, nil
	}
	for step := 0; step < 1500; step++ {
		if t.Failed() {
			return
		}
		switch r := rng.IntN(100); {
		case r < 45: // Emit a few
			for range 1 + rng.IntN(20) {
				emitOne(sizes[rng.IntN(len(sizes))])
			}
		case r < 47: // a call
			callOne(sizes[rng.IntN(4)])
		case r < 50: // a frame of the connection's own
			a.mu.Lock()
			if a.nc != nil {
				a.queueFrame(wire.AppendU64(a.out, wire.TypePing, uint64(step)))
			}
			a.mu.Unlock()
		case r < 56 && !connected: // the reader still reads after a write failed
			ack()
		case r < 80 && connected: // the writer's turn
			batch, _ := q.Take(spare[:0])
			if len(batch) == 0 {
				continue
			}
			snap := bytes.Clone(batch)
			n, fail := len(batch), rng.IntN(12) == 0
			if fail {
				n = rng.IntN(len(batch))
			}
			whole := wire.WholeLen(batch[:n])
			if fail && rng.IntN(2) == 0 {
				whole = serverGot(batch[:whole], rng)
			}
			receive(batch[:whole])
			// The server may acknowledge what it read before Wrote.
			if rng.IntN(3) == 0 {
				ack()
			}
			// More emitted while the batch is written.
			for range rng.IntN(30) {
				emitOne(sizes[rng.IntN(len(sizes))])
			}
			if !bytes.Equal(batch, snap) {
				t.Fatalf("seed %d step %d: a batch changed while it was written", seed, step)
			}
			var err error
			if fail {
				err = errors.New("broken pipe")
			}
			logf("wrote %d of %d, err %v", n, len(batch), err)
			q.Wrote(batch, n, err)
			spare = batch
			if q.Kept() {
				spare = nil
			}
			if fail {
				a.mu.Lock()
				a.nc = nil
				a.mu.Unlock()
				connected, spare = false, nil
			}
		case r < 90 && connected: // an acknowledgement
			ack()
		case r < 93 && connected: // the connection ends between writes
			a.mu.Lock()
			a.nc = nil
			a.mu.Unlock()
			connected, spare = false, nil
		case r < 96 && !connected:
			reconnect()
		case r < 100 && connected: // the writer idle
			a.mu.Lock()
			empty := a.outLen() == 0
			a.mu.Unlock()
			if empty {
				q.Idle()
				spare = nil
			}
		}
	}
	// Drain: connect, write everything, and check all arrived.
	if !connected {
		reconnect()
	}
	for range 100000 {
		batch, _ := q.Take(spare[:0])
		if len(batch) == 0 {
			break
		}
		receive(batch)
		q.Wrote(batch, len(batch), nil)
		spare = batch
		if q.Kept() {
			spare = nil
		}
		ack()
	}
	ack()
	if a.outLen() != 0 || a.sentBytes != 0 {
		t.Fatalf("seed %d: %d bytes left unsent, %d unacknowledged", seed, a.outLen(), a.sentBytes)
	}
	for id := range ids {
		if !delivered[id+1] {
			t.Fatalf("seed %d: message %d of %d never arrived", seed, id+1, ids)
		}
	}
}

// serverGot returns how much of buf, the frames a failed write had wholly
// handed to the kernel, the server read before the connection ended (a
// reset drops what it had not read): up to a random frame, with no call or
// unnumbered message after it (the agent does not keep those: a write the
// kernel took is theirs). The numbered messages past it must go out again.
func serverGot(buf []byte, rng *rand.Rand) int {
	var cuts []int // frame boundaries with no call or Msg after them
	at := 0
	for f := range wire.Frames(buf) {
		cuts = append(cuts, at)
		at += len(f.Raw)
		if f.Type == wire.TypeMsg || f.Type == wire.TypeCall {
			cuts = cuts[:0]
		}
	}
	cuts = append(cuts, at)
	return cuts[rng.IntN(len(cuts))]
}
