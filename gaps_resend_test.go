package netcluster_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/testutil/testserver"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// rawSender connects agent s of channel A at protocol version 4, as a
// sender connected again: it announces stream, numbered up to seq and
// acknowledged up to acked, then sends from..to again; it returns once
// the server has welcomed it.
func rawSender(t *testing.T, dir string, stream uint32, seq, acked, from, to uint64) net.Conn {
	t.Helper()
	nc, err := net.Dial("unix", transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	b := append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionGaps, AgentID: "s", Channel: "A"})...)
	b = wire.AppendStreamAcked(b, stream, seq, acked)
	for n := from; n <= to; n++ {
		b = wire.AppendSeqMsg(b, stream, n, &wire.Msg{Channel: "A", Agent: "s", Event: "n", Data: []byte("1")})
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := wire.NewReader(bufio.NewReader(nc), wire.DefaultMaxFrame)
	if f, err := rd.Next(); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("welcome: %v", err)
	}
	return nc
}

// TestGapSenderDiedMidResend: a sender connected again had numbered 20
// messages, 15 to 20 unacknowledged (the server before had them, and
// wrote 15 to 17 to the receiver, say); it sends 15 to 17 again and dies
// (while the server held it, within the grace, most likely). The server
// lives and ends the stream, but 18 to 20 were never routed: the
// receiver, at 17, is told at once, after number 17. A sender that sent
// all of them again ends cleanly.
func TestGapSenderDiedMidResend(t *testing.T) {
	bus := config.Default()
	bus.Channels["A"] = config.NewChannel()
	srv, dir := testserver.StartServer(t, bus, "")
	var log gapLog
	rcv := connect(t, dir, "A", netcluster.WithAgentID("rcv"), netcluster.WithErrorHandler(log.handle))
	rec := listen(t, rcv, "n")
	time.Sleep(2100 * time.Millisecond) // past the grace: resumed streams are not held
	rawSender(t, dir, 7, 0, 0, 1, 14)
	rec.waitN(t, 14)
	c2 := rawSender(t, dir, 7, 20, 14, 15, 17) // replaces the first connection: no StreamEnd for it
	rec.waitN(t, 17)
	c2.Close() // it dies mid-resend
	waitGone(t, srv, "s")
	ctx := ctxT(t)
	if err := rcv.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The notice comes from the StreamEnd, handled before anything after.
	if g := log.get(); len(g) != 1 || g[0].Agent != "s" || g[0].Stream != 7 || g[0].LastSeq != 17 {
		t.Fatalf("gap notices %+v: want one for s, after 17 (18 to 20 never reached the receiver)", g)
	}

	// Stream 8 sends all it had numbered again, then closes: no notice.
	rawSender(t, dir, 8, 0, 0, 1, 14).Close()
	waitGone(t, srv, "s")
	c3 := rawSender(t, dir, 8, 20, 14, 15, 20)
	rec.waitN(t, 17+20)
	c3.Close()
	waitGone(t, srv, "s")
	if err := rcv.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if g := log.get(); len(g) != 1 {
		t.Fatalf("gap notices %+v: want still one (stream 8 sent everything again)", g)
	}
}
