package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster/internal/natstest"
	"github.com/netcluster/netcluster/internal/wire"
)

// pauseProxy forwards TCP connections to a NATS server; while paused it
// reads nothing from its clients, as a NATS server that takes less than a
// client sends.
type pauseProxy struct {
	ln     net.Listener
	paused atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newPauseProxy(t *testing.T, upstream string) *pauseProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pauseProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.copy(u, c, true); u.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *pauseProxy) url() string { return "nats://" + p.ln.Addr().String() }

// copy copies from src to dst, reading nothing while paused if gated.
func (p *pauseProxy) copy(dst, src net.Conn, gated bool) {
	buf := make([]byte, 4096)
	for {
		for gated && p.paused.Load() {
			time.Sleep(time.Millisecond)
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A NATS server that falls behind the local agents while connected paces
// them instead of having the backbone drop what passes its outbound bound:
// host 1's bound is 1 MiB here, its agent sends 8 MB while NATS reads
// nothing for 400 ms, and the listener on host 2 gets every message, in
// order, with nothing dropped on the way.
func TestBackbonePacesSenderForSlowNATS(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{NoJetStream: true})
	px := newPauseProxy(t, ns.Addr().String())
	c1 := bbConfig(t, []string{px.url()}, `{"maxframe": 65536, "channels": {"A": {"propagatetonet": true}}}`)
	c1.NATS.OutBuffer = 65536 // the publisher's bound: 1 MiB (its least) and one largest frame
	h1 := ntStart(t, c1)
	h2 := ntStart(t, bbConfig(t, []string{ns.URL()}, `{"channels": {"A": {"propagatetonet": true}}}`))
	bbConnected(t, h1, h2)
	r := ctlDialRaw(t, h2.dir, "A", "listener")
	r.write(wire.AppendListen(nil, wire.TypeListen, "seq"))
	r.sync(1)
	bbSubjects(t, h2, "netcluster.default.A.seq")

	const n = 20000
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; {
			f := r.next()
			switch f.Type {
			case wire.TypeDropped:
				k, _ := wire.ParseU64(f.Payload)
				done <- fmt.Errorf("after %d messages the listener was told of %d dropped", i, k)
				return
			case wire.TypeMsg:
				v, err := wire.ParseMsg(f.Payload)
				if err != nil || binary.BigEndian.Uint32(v.Data) != uint32(i) {
					done <- fmt.Errorf("message %d out of order or malformed", i)
					return
				}
				i++
				got.Store(int64(i))
			}
		}
		done <- nil
	}()

	a := ctlAgent(t, h1.dir, "A")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	px.paused.Store(true)
	sent := make(chan error, 1)
	go func() {
		data := make([]byte, 1000)
		for i := range n {
			binary.BigEndian.PutUint32(data, uint32(i))
			if err := a.EmitRaw(ctx, "seq", data); err != nil {
				sent <- err
				return
			}
		}
		sent <- a.Flush(ctx)
	}()
	time.Sleep(400 * time.Millisecond)
	px.paused.Store(false)
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not sent; the listener got %d; %+v", got.Load(), *h1.srv.Stats().Backbone)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the listener got %d of %d", got.Load(), n)
	}
	if st := h1.srv.Stats().Backbone; st.Dropped != 0 || st.MsgsOut != n {
		t.Fatalf("host 1: %d dropped, %d published of %d", st.Dropped, st.MsgsOut, n)
	}
}
