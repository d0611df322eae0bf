package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/internal/testutil"
)

// counter checks the numbers one sender's messages carry as they arrive:
// each must be the one after the last, so a loss, a duplicate or a
// reordering is seen at once.
type counter struct {
	mu       sync.Mutex
	last     uint64
	dups     int // numbers at or below last
	gaps     int // numbers past last+1
	firstBad string
}

func (c *counter) handle(m *netcluster.Message) {
	n := binary.BigEndian.Uint64(m.Data)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case n == c.last+1:
		c.last = n
	case n <= c.last:
		c.dups++
		if c.firstBad == "" {
			c.firstBad = "duplicate " + itoa(n) + " after " + itoa(c.last)
		}
	default:
		c.gaps++
		if c.firstBad == "" {
			c.firstBad = "gap: " + itoa(n) + " after " + itoa(c.last)
		}
		c.last = n
	}
}

func (c *counter) get() (last uint64, dups, gaps int, bad string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.dups, c.gaps, c.firstBad
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func itoa(n uint64) string { return uintStr(n) }

func uintStr(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// TestKillServerUnderLoad kills ncserver with SIGKILL ten times while a
// sender emits numbered 128-byte messages as fast as Emit accepts them,
// restarting it each time, and checks that the receiver gets every
// message Emit accepted exactly once and in order: the agent keeps what
// the server has not acknowledged and sends it again, and the receiver
// drops what it already had (protocol version 3).
func TestKillServerUnderLoad(t *testing.T) {
	const kills = 10
	bin := buildServer(t)
	dir := testutil.ShortDir(t)
	config := writeConfig(t, dir)
	srv := startServer(t, bin, config)
	defer func() { srv.kill() }()

	// The whole test, kills and the final count, is bounded by ctx: under
	// three minutes with the build of ncserver, however loaded the machine.
	ctx := testutil.Context(t, 2*time.Minute)
	end, _ := ctx.Deadline()
	var recvErrs atomic.Int64
	// Both retry at most every 250 ms, well within the server's restart
	// grace (docs/PROTOCOL.md, section 14), however slow the machine.
	retry := netcluster.WithReconnectWait(10*time.Millisecond, 250*time.Millisecond)
	rcv, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("receiver"), retry,
		netcluster.WithErrorHandler(func(err error) {
			var de *netcluster.DroppedError
			if errors.As(err, &de) {
				recvErrs.Add(int64(de.Count))
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close(context.Background())
	var c counter
	if _, err := rcv.On("n", c.handle); err != nil {
		t.Fatal(err)
	}
	if err := rcv.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The sender's buffer, which holds what the server has not
	// acknowledged, is under three quarters of the server's outbuffer (8
	// MiB): however far behind the receiver falls, the server never stops
	// waiting for it (docs/PROTOCOL.md, section 14).
	snd, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(dir), netcluster.WithAgentID("sender"), retry,
		netcluster.WithBufferSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}

	// The sender: numbers from 1, each retried until Emit accepts it
	// (while the server is down Emit says the buffer is full).
	var accepted atomic.Uint64
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		data := make([]byte, 128)
		for n := uint64(1); ; n++ {
			binary.BigEndian.PutUint64(data, n)
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := snd.EmitRaw(ctx, "n", data)
				if err == nil {
					break
				}
				if !errors.Is(err, netcluster.ErrBufferFull) {
					t.Errorf("emit %d: %v", n, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
			accepted.Store(n)
		}
	}()

	for i := range kills {
		// Under load: the receiver is getting messages.
		before, _, _, _ := c.get()
		deadline := earliest(time.Now().Add(20*time.Second), end)
		for {
			time.Sleep(50 * time.Millisecond)
			if now, _, _, _ := c.get(); now > before+10000 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the receiver got no traffic (at %d)", i+1, before)
			}
		}
		now, _, _, _ := c.get()
		t.Logf("kill %d at %s: received %d, accepted %d", i+1, time.Now().Format("15:04:05.000"), now, accepted.Load())
		srv.kill()
		srv = startServer(t, bin, config)
	}
	close(stop)
	<-sent
	total := accepted.Load()
	if last, _, _, _ := c.get(); true {
		t.Logf("sender stopped at %d, received %d", total, last)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Flush waits for the reconnection and for the server to route what
	// was sent again; Close then waits for the acknowledgements.
	if err := snd.Flush(closeCtx); err != nil {
		t.Fatalf("sender flush: %v", err)
	}
	if err := snd.Close(closeCtx); err != nil {
		if os.Getenv("CHAOS_DEBUG") != "" {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			srv.cmd.Process.Signal(syscall.SIGQUIT)
			<-srv.done
			os.Stderr.WriteString(srv.out.String())
		}
		t.Fatalf("sender close: %v", err)
	}
	deadline := earliest(time.Now().Add(30*time.Second), end)
	for {
		last, _, _, _ := c.get()
		if last >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	last, dups, gaps, bad := c.get()
	t.Logf("%d kills; %d messages accepted by Emit, last received %d, %d duplicates, %d gaps, %d reported dropped",
		kills, total, last, dups, gaps, recvErrs.Load())
	if last != total || dups != 0 || gaps != 0 {
		t.Fatalf("received up to %d of %d, %d duplicates, %d gaps (first: %s)", last, total, dups, gaps, bad)
	}
}
