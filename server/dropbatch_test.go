package server

import (
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A sender's drops for agents that read nothing, counted in batches while
// it has more to read (dropbatch.go), are all in the agents' counts once
// it has read all it sent: each agent's count is what the channel counts,
// and the agent's Dropped frame says as much.
func TestDropBatchCountsAll(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"outbuffer": 65536, "channels": {"A": {}}}`)
	ch := srv.channels["A"]
	const stuck = 3
	var rs []*ctlRaw
	var ids []string
	for i := range stuck {
		ids = append(ids, "stuck"+string(rune('a'+i)))
		r := qDialRaw(t, dir, "A", ids[i], wire.VersionAcks)
		r.write(wire.AppendListen(nil, wire.TypeListen, "x"))
		r.sync(1)
		rs = append(rs, r)
	}
	snd := qDialRaw(t, dir, "A", "s", wire.Version)
	// Several bursts, each read by the server as many frames at once.
	const bursts, per = 20, 1000
	for range bursts {
		var b []byte
		for range per {
			b = wire.AppendMsg(b, &wire.Msg{Channel: "A", Agent: "s", Event: "x", Data: make([]byte, 500)})
		}
		snd.write(b)
	}
	snd.sync(2) // the server has read and routed all of it
	var sum uint64
	for _, id := range ids {
		sum += ch.agent(id).dropped.Load()
	}
	if st := ch.stats.dropped.Load(); sum != st || st == 0 {
		t.Fatalf("agents count %d drops, the channel %d; want the same, not 0", sum, st)
	}
	// Each agent reads what it was sent and the count of what it missed.
	for _, r := range rs {
		got, dropped := 0, uint64(0)
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for got+int(dropped) < bursts*per {
			f := r.next()
			switch f.Type {
			case wire.TypeMsg:
				got++
			case wire.TypeDropped:
				n, _ := wire.ParseU64(f.Payload)
				dropped += n
			}
		}
		if got+int(dropped) != bursts*per {
			t.Errorf("an agent read %d and was told of %d dropped, want %d in all", got, dropped, bursts*per)
		}
	}
}
