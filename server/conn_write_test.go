package server

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/netcluster/netcluster/config"
)

// A writer started directly (as tests start theirs) while frames are being
// signalled is the only writer: a signal between its setting writerOn and
// its setting writerUp started a second one, and when the connection closed
// both closed writerDone (a panic seen in CI in routeSetup's writers).
func TestWriteLoopBesideSignalsIsTheOnlyWriter(t *testing.T) {
	bus := config.New()
	bus.Channels["A"] = &config.Channel{}
	s, err := New(Config{Bus: bus, NoListen: true, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := s.channels["A"]
	for range 2000 {
		c := newConn(a, sink{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			c.writeLoop()
		}()
		go func() {
			defer wg.Done()
			for !c.writerOn.Load() {
				c.signal()
			}
			c.signal()
		}()
		for !c.writerOn.Load() {
		}
		c.close()
		wg.Wait()
		<-c.writer().writerDone
	}
}
