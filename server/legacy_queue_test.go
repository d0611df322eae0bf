package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/transport"
)

// What was queued for a connection while its wire was unknown is turned
// into legacy envelopes as the agent reads them, not all at once when its
// silence marks it legacy: an agent that reads nothing costs no
// conversion, and its outbox stays within outbuffer even though envelopes
// are larger than the frames (binary data goes as base64). Read at last,
// the messages arrive whole and in order, those routed after the decision
// after those queued before it.
func TestLegacyQueueConvertedAsRead(t *testing.T) {
	t.Parallel()
	const outbuffer = 256 << 10
	srv, dir := ctlServer(t, `{"outbuffer": 262144, "channels": {"A": {}}}`)
	silent, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	src := ctlAgent(t, dir, "A")
	emit := func(from, to int) {
		data := bytes.Repeat([]byte{0xff}, 200) // not UTF-8: base64 in an envelope
		for i := from; i < to; i++ {
			binary.BigEndian.PutUint32(data, uint32(i))
			if err := src.EmitRaw(ctlCtx(t), "n", data); err != nil {
				t.Fatal(err)
			}
		}
		if err := src.Flush(ctlCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	emit(0, 2000) // more than the outbox holds: it fills, the rest is dropped
	srv.mu.Lock()
	ch := srv.channels["A"]
	srv.mu.Unlock()
	var c *conn
	waitUntil(t, "the silent connection turned legacy", func() bool {
		for _, m := range ch.members() {
			m.omu.Lock()
			legacy := m.legacy
			m.omu.Unlock()
			if legacy {
				c = m
				return true
			}
		}
		return false
	})
	emit(2000, 2100)
	// Held: at most the bound, and the batch being written, which is
	// larger as envelopes than it was as frames (the part of the backlog
	// converted counts until it is let go: convert).
	for range 20 {
		c.omu.Lock()
		queued, batch := c.queuedLocked(), c.batchLen
		c.omu.Unlock()
		if queued > outbuffer+batch {
			t.Fatalf("a legacy agent that reads nothing holds %d bytes queued, outbuffer %d, the batch being written %d", queued, outbuffer, batch)
		}
		time.Sleep(10 * time.Millisecond)
	}
	emit(2100, 2200)
	br := bufio.NewReader(silent)
	last, n := -1, 0
	for {
		silent.SetReadDeadline(time.Now().Add(time.Second))
		env, err := br.ReadBytes(0)
		if err != nil {
			break
		}
		var e struct {
			Event string `json:"event"`
			Data  string `json:"data"`
		}
		if err := json.Unmarshal(env[:len(env)-1], &e); err != nil || e.Event != "n" {
			t.Fatalf("envelope %q: %v", env, err)
		}
		b, err := base64.StdEncoding.DecodeString(e.Data)
		if err != nil || len(b) != 200 {
			t.Fatalf("data %q: %v", e.Data, err)
		}
		i := int(binary.BigEndian.Uint32(b))
		if i <= last || (n == 0 && i != 0) {
			t.Fatalf("message %d after %d", i, last)
		}
		last = i
		n++
	}
	if n < outbuffer/300 || last < 2100 {
		t.Fatalf("got %d messages, the last %d; want those that fit in the outbox, then those after", n, last)
	}
}

// A legacy envelope larger than the read buffer is charged, as it
// arrives, to the partial frame budget: agents whose unfinished envelopes
// would pass it are refused, counted and told why.
func TestLegacyPartialBudget(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"partialframes": 4194304, "channels": {"A": {}}}`)
	const n, sent = 8, 3 << 19 // 1.5 MiB of an envelope each
	var conns []*bufio.Reader
	for range n {
		nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		go func() {
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			nc.Write([]byte(`{"event":"e","data":"` + strings.Repeat("x", sent)))
		}()
		conns = append(conns, bufio.NewReader(nc))
	}
	waitUntil(t, "envelopes refused", func() bool {
		ci, _ := srv.Channel("A")
		return ci.FramesRefused >= n-2 // at most 2 fit in 4 MiB
	})
	if held := srv.partial.Load(); held > 4<<20 {
		t.Fatalf("partial envelopes hold %d bytes, budget %d", held, 4<<20)
	}
	told := 0
	for _, br := range conns {
		done := make(chan []byte, 1)
		go func() {
			for {
				env, err := br.ReadBytes(0)
				if err != nil || bytes.Contains(env, []byte("nc-error")) {
					done <- env
					return
				}
			}
		}()
		select {
		case env := <-done:
			if bytes.Contains(env, []byte("partialframes")) {
				told++
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	if told < n-2 {
		t.Fatalf("%d legacy agents told of the partialframes budget, want %d", told, n-2)
	}
}
