package netcluster

import (
	"runtime"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// A replayed message costs what a live one does: a Message and its data
// from the reader's slabs, not slabs of its own (a replay's messages are
// all kept until it ends, and two new 16 KiB slabs each made 10,000
// replayed 128-byte messages hold some 320 MB).
func TestReplayedFromTheReadersSlabs(t *testing.T) { // not parallel: counts allocations
	a := &Agent{}
	pr := &pendingReplay{id: 1}
	a.replays = []*pendingReplay{pr}
	payload := wire.AppendMsg(nil, &wire.Msg{Flags: wire.FlagReplayed, Channel: "ch", Agent: "a1", Event: "ev", Data: make([]byte, 128)})[wire.HeaderLen:]
	var alloc recvAlloc
	const msgs = 10_000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range msgs {
		if err := a.onReplayed(&alloc, payload); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// The Message and its data, and pr.msgs's growth: 8 bytes each,
	// doubled, twice over at most.
	if per, want := float64(after.TotalAlloc-before.TotalAlloc)/msgs, 104.0+128+16+32; per > want {
		t.Fatalf("%.0f bytes allocated per replayed message, want at most %.0f", per, want)
	}
	if len(pr.msgs) != msgs || !pr.msgs[0].Replayed || pr.msgs[msgs-1].Event != "ev" || len(pr.msgs[msgs-1].Data) != 128 {
		t.Fatalf("%d replayed, the last %+v", len(pr.msgs), pr.msgs[msgs-1])
	}
}
