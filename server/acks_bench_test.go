package server

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

// BenchmarkAckRound is one round of the acker (acks_round.go) for a
// version 3 sender with a number to acknowledge, beside a listening
// receiver and n idle agents of the same channel (joined, listening to
// nothing): taking the numbers, noting the recipients to wait for,
// waiting (nothing is queued for anyone) and acknowledging. Its cost
// should not grow with the idle agents. The server's own acker is
// stopped: the benchmark runs the rounds.
//
//	go test -run x -bench AckRound -benchmem ./server
func BenchmarkAckRound(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run("idle"+strconv.Itoa(n), func(b *testing.B) {
			srv, dir := ctlServer(b, `{"channels": {"A": {}}}`)
			ch := srv.channels["A"]
			dst := ctlAgent(b, dir, "A")
			if _, err := dst.On("x", func(*netcluster.Message) {}); err != nil {
				b.Fatal(err)
			}
			dst.Flush(context.Background())
			ackHello(b, dir, "src")
			for i := range n {
				ackHello(b, dir, "idle"+strconv.Itoa(i))
			}
			for deadline := time.Now().Add(30 * time.Second); len(ch.members()) < n+2; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d agents joined", len(ch.members()), n+2)
				}
			}
			src := ch.agent("src")
			srv.acks.stop()
			b.ResetTimer()
			for i := range b.N {
				src.routed.Store(uint64(i + 1)) // as onSeqMsg does
				benchAckRound(srv, src)
			}
			b.StopTimer()
			if src.acked != uint64(b.N) {
				b.Fatalf("acknowledged %d, want %d", src.acked, b.N)
			}
		})
	}
}

// ackHello connects a version 3 agent that says Hello and nothing more,
// and reads nothing.
func ackHello(b *testing.B, dir, id string) {
	nc, err := transport.Dial(context.Background(), transport.SocketPath(dir, "A"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	nc.Write(append([]byte(wire.Preamble), wire.AppendHello(nil, wire.Hello{Version: wire.VersionAcks, AgentID: id, Channel: "A"})...))
}

// benchAckRound runs one round of the acker for the number just routed by
// src, without sending the Ack frame (which would have the next round
// wait for src's writer).
func benchAckRound(s *Server, src *conn) {
	a := &s.acks
	a.kick(src)
	if !a.collect() {
		return
	}
	a.snapshot()
	for len(a.wait) > 0 {
		a.poll(time.Now())
	}
	for _, k := range a.cands {
		k.c.acked = k.seq
	}
	clear(a.cands)
}
