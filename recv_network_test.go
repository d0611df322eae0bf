package netcluster

import (
	"bufio"
	"testing"
	"unsafe"

	"github.com/netcluster/netcluster/internal/wire"
)

// networkSetup is recvSetup for messages that came over the network, as
// a listener on the receiving host of S9 gets them: each names its origin
// server (Node), and two servers' agents interleave, so the per-field
// memo misses and the names come from the interned set.
func networkSetup() (*wire.Reader, *recvAlloc) {
	var stream []byte
	for i := 0; ; i++ {
		f := wire.AppendMsg(nil, &wire.Msg{
			Channel: "bench", Agent: []string{"pub-1", "pub-2"}[i%2], Event: "bench",
			Node: []string{"00112233aabbccdd", "8899aabbccddeeff"}[i%2], Data: make([]byte, 128),
		})
		if len(stream)+len(f) > readBufSize {
			break
		}
		stream = append(stream, f...)
	}
	return wire.NewReader(bufio.NewReaderSize(&endless{b: stream}, readBufSize), wire.DefaultMaxFrame), &recvAlloc{}
}

// A message from the network allocates nothing per message either: its
// origin node's name is interned like the other names, and the Message
// and its data come from the slabs.
func TestReceiveFromNetworkAllocatesNothing(t *testing.T) { // not parallel: counts allocations
	rd, alloc := networkSetup()
	per := checkRecvAllocs(t, rd, alloc, "received from the network")
	// Per message, a Message and its data's share of a slab: nothing else.
	if want := int(unsafe.Sizeof(Message{})) + 128 + 16; per > float64(want) {
		t.Fatalf("%.0f bytes allocated per message from the network, want at most %d", per, want)
	}
	a, b := recvOne(t, rd, alloc), recvOne(t, rd, alloc)
	if a.Node == b.Node || a.Agent == b.Agent || len(a.Node) != 16 || a.Channel != "bench" || len(a.Data) != 128 {
		t.Fatalf("received %+v and %+v", a, b)
	}
}
