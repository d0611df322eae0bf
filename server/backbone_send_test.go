package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// bbSendPair is two servers joined by NATS: a raw sender of protocol
// version 3 on host 1, and on host 2 a raw listener to events a and b of
// channel A.
func bbSendPair(t *testing.T) (snd, lis *ctlRaw) {
	t.Helper()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h1, h2)
	lis = ctlDialRaw(t, h2.dir, "A", "lis")
	lis.write(wire.AppendListen(nil, wire.TypeListen, "a"))
	lis.write(wire.AppendListen(nil, wire.TypeListen, "b"))
	lis.sync(1)
	bbSubjects(t, h2, "netcluster.default.A.a", "netcluster.default.A.b")
	return qDialRaw(t, h1.dir, "A", "snd", wire.VersionAcks), lis
}

// bbSendData is message i's data: its number, then bytes of a length
// that varies, so that frames straddle the server's read buffers.
func bbSendData(i int) []byte {
	d := binary.BigEndian.AppendUint32(nil, uint32(i))
	return append(d, bytes.Repeat([]byte{byte(i)}, i*7%1500)...)
}

// bbExpect reads n messages at lis and checks that they are messages 0 to
// n-1 (bbSendData) with the events events gives.
func bbExpect(t *testing.T, lis *ctlRaw, n int, event func(i int) string) {
	t.Helper()
	for i := 0; i < n; {
		f := lis.next()
		switch f.Type {
		case wire.TypeDropped:
			t.Fatalf("after %d messages the server dropped some", i)
		case wire.TypeMsg:
			v, err := wire.ParseMsg(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(v.Event) != event(i) || !bytes.Equal(v.Data, bbSendData(i)) {
				k := -1
				if len(v.Data) >= 4 {
					k = int(binary.BigEndian.Uint32(v.Data))
				}
				t.Fatalf("message %d: event %q, number %d, %d bytes; want event %q, %d bytes", i, v.Event, k, len(v.Data), event(i), len(bbSendData(i)))
			}
			i++
		}
	}
}

// A sender's SeqMsgs go to the backbone in runs taken from its read
// buffer (bbRun): every message arrives on the other host whole and in
// order, though frames straddle the reads (the run is handed over before
// the buffer is read into again), the event changes, Msg frames (sent at
// once, after the run) and Pings come between them.
func TestBackboneRunsKeepOrder(t *testing.T) {
	t.Parallel()
	snd, lis := bbSendPair(t)
	const n = 3000
	event := func(i int) string {
		if i%89 == 0 || i%97 == 0 {
			return "b"
		}
		return "a"
	}
	var out []byte
	seq := uint64(0)
	for i := range n {
		m := wire.Msg{Channel: "A", Agent: "snd", Event: event(i), Data: bbSendData(i)}
		if i%97 == 0 {
			out = wire.AppendMsg(out, &m)
		} else {
			seq++
			out = wire.AppendSeqMsg(out, 1, seq, &m)
		}
		if i%50 == 0 {
			out = wire.AppendU64(out, wire.TypePing, uint64(i))
		}
	}
	go snd.nc.Write(out) // the acks and pongs it gets are not read: they are few
	bbExpect(t, lis, n, event)
}

// A run read before a frame that ends the connection (a SeqMsg without
// an event) is handed over all the same: nothing the server routed before
// the error is lost.
func TestBackboneRunAtConnectionEnd(t *testing.T) {
	t.Parallel()
	snd, lis := bbSendPair(t)
	const n = 20
	var out []byte
	for i := range n {
		out = wire.AppendSeqMsg(out, 1, uint64(i+1), &wire.Msg{Channel: "A", Agent: "snd", Event: "a", Data: bbSendData(i)})
	}
	out = wire.AppendSeqMsg(out, 1, n+1, &wire.Msg{Channel: "A", Agent: "snd", Data: []byte("no event")})
	snd.write(out)
	for f := snd.next(); f.Type != wire.TypeError; f = snd.next() {
	}
	bbExpect(t, lis, n, func(int) string { return "a" })
}

// Routing a SeqMsg to the backbone, its run handed over at the end of
// each read buffer, allocates nothing (the view of a message stays on the
// reader's stack: bbRun.next).
func TestBackboneRunAllocatesNothing(t *testing.T) {
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	h1 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h1)
	src := newConn(h1.srv.channels["A"], sink{})
	src.id, src.version = "src", wire.VersionAcks
	var stream []byte
	for i := 0; len(stream) < 3*readBufSize; i++ {
		stream = wire.AppendSeqMsg(stream, 1, uint64(i+1), &wire.Msg{Channel: "A", Agent: "src", Event: "ev", Data: make([]byte, 128)})
	}
	src.br = bufio.NewReaderSize(&cycle{b: stream}, readBufSize)
	src.rd = wire.NewReader(src.br, wire.DefaultMaxFrame)
	read := func() {
		if src.snd != nil && len(src.snd.bbRun.frames) > 0 && !src.nextBuffered() {
			src.flushBackbone() // as readNative does
		}
		readOne(t, src)
	}
	for range 1000 {
		read()
	}
	if n := testing.AllocsPerRun(10000, read); n != 0 {
		t.Fatalf("routing a SeqMsg to the backbone allocates %.2f times", n)
	}
	src.flushBackbone()
	ntWait(t, "messages published", func() bool { return h1.srv.Stats().Backbone.MsgsOut >= 11000 })
}

// A run read before a frame the reader cannot take (one of length 0) is
// handed over all the same.
func TestBackboneRunBeforeBadFrame(t *testing.T) {
	t.Parallel()
	snd, lis := bbSendPair(t)
	const n = 20
	var out []byte
	for i := range n {
		out = wire.AppendSeqMsg(out, 1, uint64(i+1), &wire.Msg{Channel: "A", Agent: "snd", Event: "a", Data: bbSendData(i)})
	}
	out = append(out, 0, 0, 0, 0)
	snd.write(out)
	bbExpect(t, lis, n, func(int) string { return "a" })
}
