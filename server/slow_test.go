package server

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// A slow consumer that the server disconnects is told why, even when it
// reads again only after longer than lingerTimeout: the server cuts the
// write in flight at a frame's end and waits for it to take the error.
func TestSlowConsumerToldAfterPause(t *testing.T) {
	t.Parallel()
	srv, dir := ctlServer(t, `{"outbuffer": 65536, "slowconsumer": "disconnect", "channels": {"A": {}}}`)
	slow := ctlDialRaw(t, dir, "A", "slow")
	slow.write(wire.AppendListen(nil, wire.TypeListen, "x"))
	slow.sync(1)
	src := ctlAgent(t, dir, "A")
	ctx := ctlCtx(t)
	payload := strings.Repeat("p", 100)
	for i := 0; ; i++ {
		if ci, _ := srv.Channel("A"); ci.Slow > 0 {
			break
		}
		if i == 200000 {
			t.Fatal("the slow agent was never disconnected")
		}
		if err := src.Emit(ctx, "x", payload); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * lingerTimeout)
	start := time.Now()
	msgs := 0
	for {
		slow.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := slow.rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("stream ended after %d messages and %v without an error frame: %v", msgs, time.Since(start), err)
			}
			t.Fatal(err)
		}
		switch f.Type {
		case wire.TypeMsg:
			msgs++
			continue
		case wire.TypeError:
			e, _ := wire.ParseError(f.Payload)
			if e.Code != wire.CodeSlowConsumer {
				t.Fatalf("error %d %q, want a slow consumer error", e.Code, e.Text)
			}
			t.Logf("told after %d messages, %v", msgs, time.Since(start))
			return
		}
	}
}
