package server

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// partialSender connects a native agent to A and sends the start of a Msg
// frame of size bytes: its header and sent bytes of it.
func partialSender(t *testing.T, dir, id string, size, sent int) *ctlRaw {
	t.Helper()
	r := ctlDialRaw(t, dir, "A", id)
	b := binary.BigEndian.AppendUint32(nil, uint32(size-wire.LenSize))
	b = append(b, wire.TypeMsg)
	b = append(b, make([]byte, sent-len(b))...)
	r.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	r.nc.Write(b) // fails once the server refuses the frame
	return r
}

// expectError reads frames until an Error, and checks its text.
func expectError(t *testing.T, r *ctlRaw, want string) {
	t.Helper()
	for {
		f := r.next()
		if f.Type == wire.TypeError {
			if e, _ := wire.ParseError(f.Payload); !strings.Contains(e.Text, want) {
				t.Fatalf("error %q, want it to name %q", e.Text, want)
			}
			return
		}
	}
}

// Frames in progress have one budget over the whole server: agents whose
// unfinished frames would pass it are refused, counted, and told why.
func TestPartialFramesBudget(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"partialframes": 4194304, "channels": {"A": {}}}`)
	const n, size, sent = 8, 2 << 20, 3 << 19 // 1.5 MiB of each 2 MiB frame
	var conns []*ctlRaw
	for i := range n {
		conns = append(conns, partialSender(t, dir, "p"+itoa(i), size, sent))
	}
	waitUntil(t, "frames refused", func() bool {
		ci, _ := srv.Channel("A")
		return ci.FramesRefused >= n-2 // at most 2 fit in 4 MiB
	})
	if held := srv.partial.Load(); held > 4<<20 {
		t.Fatalf("partial frames hold %d bytes, budget %d", held, 4<<20)
	}
	refused := 0
	for _, r := range conns {
		r.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if f, err := r.rd.Next(); err == nil && f.Type == wire.TypeError {
			if e, _ := wire.ParseError(f.Payload); strings.Contains(e.Text, "partialframes") {
				refused++
			}
		}
	}
	if refused < n-2 {
		t.Fatalf("%d agents told of the partialframes budget, want %d", refused, n-2)
	}
	// Once the agents are gone, their charges are given back.
	for _, r := range conns {
		r.nc.Close()
	}
	waitUntil(t, "the budget given back", func() bool { return srv.partial.Load() == 0 })
}

// A frame that stops arriving is refused after its deadline.
func TestPartialFrameDeadline(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	const size = 100 << 10
	r := partialSender(t, dir, "stuck", size, 50<<10)
	start := time.Now()
	expectError(t, r, "not received within")
	if d := time.Since(start); d < frameGrace/2 {
		t.Fatalf("refused after %v, before its deadline %v", d, frameTimeout(size))
	}
	if ci, _ := srv.Channel("A"); ci.FramesRefused != 1 {
		t.Fatalf("FramesRefused %d, want 1", ci.FramesRefused)
	}
}
