package netcluster_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
)

// A handler may call Flush while the receive queue is over its bound: the
// reader must not wait for room that only the handler could make.
func TestFlushFromHandler(t *testing.T) {
	_, dir := startServer(t, nil)
	recv := connect(t, dir, "A", netcluster.WithQueueSize(1))
	send := connect(t, dir, "A")
	res := make(chan error, 1)
	var once sync.Once
	block := make(chan struct{})
	recv.On("e", func(*netcluster.Message) {
		once.Do(func() {
			<-block // let the next messages arrive and fill the queue
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res <- recv.Flush(ctx)
		})
	})
	recv.Flush(ctxT(t))
	for i := range 5 {
		send.Emit(ctxT(t), "e", i)
		send.Flush(ctxT(t))
		time.Sleep(20 * time.Millisecond)
	}
	close(block)
	if err := <-res; err != nil {
		t.Fatalf("Flush from a handler: %v", err)
	}
}

// hookConn calls onClear when the handshake clears its deadline, the last
// step of a (re)connection.
type hookConn struct {
	net.Conn
	onClear func()
}

func (c *hookConn) SetDeadline(t time.Time) error {
	if t.IsZero() && c.onClear != nil {
		c.onClear()
	}
	return c.Conn.SetDeadline(t)
}

// Close racing a reconnection that has just finished its handshake returns,
// and the new connection is not attached.
func TestCloseDuringReconnect(t *testing.T) {
	srv, _ := startServer(t, nil)
	var (
		mu    sync.Mutex
		n     int
		a     *netcluster.Agent
		first net.Conn
	)
	closed := make(chan error, 1)
	dial := func(ctx context.Context, ch string) (net.Conn, error) {
		nc, err := srv.Dial(ctx, ch)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k == 1 {
			first = nc
			return nc, nil
		}
		return &hookConn{Conn: nc, onClear: func() {
			go func() { closed <- a.Close(context.Background()) }()
			time.Sleep(200 * time.Millisecond) // Close reaches its wait meanwhile
		}}, nil
	}
	var err error
	a, err = netcluster.Connect(ctxT(t), "A", netcluster.WithDialer(dial), netcluster.WithReconnectWait(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	first.Close() // force a reconnection
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs: the reconnection attached a connection after Close")
	}
	if s := a.State(); s != netcluster.Closed {
		t.Fatalf("state %v after Close", s)
	}
}

func TestLongPatternRefused(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	if _, err := a.On(strings.Repeat("a", 70000), func(*netcluster.Message) {}); err == nil || !strings.Contains(err.Error(), "70000 bytes") {
		t.Fatalf("On with a 70000-byte pattern: %v", err)
	}
}

// With WithoutReconnect, once the connection ends Emit and Flush fail at
// once instead of buffering and waiting for ever.
func TestWithoutReconnectGivesUp(t *testing.T) {
	srv, dir := startServer(t, nil)
	a := connect(t, dir, "A", netcluster.WithoutReconnect())
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for a.State() != netcluster.Disconnected {
		if time.Now().After(deadline) {
			t.Fatal("never disconnected")
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.Emit(ctxT(t), "x", 1); !errors.Is(err, netcluster.ErrNotConnected) {
		t.Errorf("Emit after giving up: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Flush(ctx); !errors.Is(err, netcluster.ErrNotConnected) {
		t.Errorf("Flush after giving up: %v", err)
	}
}

func TestStateAfterClose(t *testing.T) {
	_, dir := startServer(t, nil)
	a := connect(t, dir, "A")
	a.Close(context.Background())
	if s := a.State(); s != netcluster.Closed {
		t.Fatalf("State after Close = %v", s)
	}
}
