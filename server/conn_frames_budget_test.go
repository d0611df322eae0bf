package server

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/transport"
)

// What frames and legacy envelopes in progress are charged never passes
// partialframes, not even for the moment between a chunk that would pass
// it and its refusal: the chunk is refused uncharged. Agents race for a
// budget of two read buffers while the charge is watched; an agent's
// chunk charged and then refused showed as a charge over the budget
// (TestLegacyPartialBudget failed once in a loaded run).
func TestPartialBudgetNeverPassed(t *testing.T) {
	const budget = 2 * readBufSize
	const n, rounds, size = 8, 8, 4 * readBufSize
	for _, wire := range []string{"native", "legacy"} {
		t.Run(wire, func(t *testing.T) {
			srv, dir := ctlServer(t, `{"partialframes": `+itoa(budget)+`, "channels": {"A": {}}}`)
			var peak atomic.Int64
			stop := make(chan struct{})
			var watch sync.WaitGroup
			watch.Add(1)
			go func() {
				defer watch.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if v := srv.partial.Load(); v > peak.Load() {
						peak.Store(v)
					}
				}
			}()
			refused := uint64(0)
			for r := range rounds {
				var closers []func()
				for i := range n {
					if wire == "native" {
						p := partialSender(t, dir, "p"+itoa(r*n+i), size, size-1)
						closers = append(closers, func() { p.nc.Close() })
						continue
					}
					nc, err := transport.Dial(ctlCtx(t), transport.SocketPath(dir, "A"))
					if err != nil {
						t.Fatal(err)
					}
					closers = append(closers, func() { nc.Close() })
					go func() {
						nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
						nc.Write([]byte(`{"event":"e","data":"` + strings.Repeat("x", size)))
					}()
				}
				refused += uint64(n - 2) // at most 2 chunks of the read buffer fit
				waitUntil(t, "chunks refused", func() bool {
					ci, _ := srv.Channel("A")
					return ci.FramesRefused >= refused
				})
				for _, c := range closers {
					c()
				}
				waitUntil(t, "the budget given back", func() bool { return srv.partial.Load() == 0 })
				ci, _ := srv.Channel("A")
				refused = ci.FramesRefused
			}
			close(stop)
			watch.Wait()
			if p := peak.Load(); p > budget {
				t.Fatalf("frames in progress charged %d bytes at a time, budget %d", p, budget)
			}
		})
	}
}
