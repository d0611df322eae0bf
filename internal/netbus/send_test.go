package netbus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/netbus/memnet"
)

// heldBus is a Bus whose transport writes are paused, and its queue
// filled until Send refuses: the next message finds the queue full.
func heldBus(t *testing.T) (*netbus.Bus, *memnet.Conn) {
	t.Helper()
	conn := memnet.NewHub(memnet.HubOptions{}).Attach()
	b, err := netbus.New(netbus.Config{
		Transport: conn, MaxMessage: 1000, SendQueue: 4000,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, func(netbus.Peer, string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.ResumeWrites()
		b.Close()
	})
	conn.PauseWrites()
	for b.Send("c", make([]byte, 1000)) == nil {
		synctest.Wait() // let the writer take what it can, then block
	}
	if got := b.Stats().Sent.QueueFull; got != 1 {
		t.Fatalf("QueueFull after the refused Send = %d, want 1", got)
	}
	return b, conn
}

// sendWait runs SendWait in a goroutine; the channel gets its result.
func sendWait(ctx context.Context, b *netbus.Bus) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.SendWait(ctx, "c", make([]byte, 1000)) }()
	return done
}

func TestSendWaitWaitsForRoom(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b, conn := heldBus(t)
		done := sendWait(context.Background(), b)
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("SendWait returned %v with the queue full", err)
		default:
		}
		// Counted once for the message, not once per wait or wake-up.
		if got := b.Stats().Sent.QueueFull; got != 2 {
			t.Errorf("QueueFull while waiting = %d, want 2", got)
		}
		conn.ResumeWrites()
		if err := <-done; err != nil {
			t.Fatalf("SendWait after room: %v", err)
		}
		if got := b.Stats().Sent.QueueFull; got != 2 {
			t.Errorf("QueueFull after the wait = %d, want 2", got)
		}
	})
}

func TestSendWaitCtxEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b, _ := heldBus(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := <-sendWait(ctx, b)
		if !errors.Is(err, netbus.ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendWait: %v, want ErrQueueFull and DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("SendWait gave up after %v, want 2s", d)
		}
		if got := b.Stats().Sent.QueueFull; got != 2 {
			t.Errorf("QueueFull = %d, want 2 (one per refused message)", got)
		}
	})
}

func TestSendWaitRoomAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		conn := memnet.NewHub(memnet.HubOptions{}).Attach()
		b, err := netbus.New(netbus.Config{Transport: conn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			func(netbus.Peer, string, []byte) {})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a done ctx does not matter while there is room
		if err := b.SendWait(ctx, "c", []byte("x")); err != nil {
			t.Fatalf("SendWait with room: %v", err)
		}
		if err := b.SendWait(ctx, "c", make([]byte, 1<<30)); !errors.Is(err, netbus.ErrTooLarge) {
			t.Errorf("too large: %v", err)
		}
		if got := b.Stats().Sent.QueueFull; got != 0 {
			t.Errorf("QueueFull = %d, want 0", got)
		}
	})
}

func TestSendWaitClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b, conn := heldBus(t)
		done := sendWait(context.Background(), b)
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }() // waits for the held writer
		if err := <-done; !errors.Is(err, netbus.ErrClosed) {
			t.Errorf("SendWait during Close: %v, want ErrClosed", err)
		}
		conn.ResumeWrites()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if err := b.SendWait(context.Background(), "c", nil); !errors.Is(err, netbus.ErrClosed) {
			t.Errorf("SendWait after Close: %v, want ErrClosed", err)
		}
	})
}
