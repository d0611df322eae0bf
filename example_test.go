package netcluster_test

import (
	"context"
	"fmt"

	"github.com/netcluster/netcluster"
	"github.com/netcluster/netcluster/server"
)

// The seed README's receiver and sender, in one program: an embedded
// server, and two agents that reach it in memory.
func Example() {
	ctx := context.Background()
	srv, err := server.New(server.Config{NoListen: true}) // the default config: control, A, B
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Close()

	receiver, err := netcluster.Connect(ctx, "B", netcluster.WithDialer(srv.Dial))
	if err != nil {
		panic(err)
	}
	defer receiver.Close(ctx)
	done := make(chan struct{})
	receiver.Once("log", func(m *netcluster.Message) {
		var s string
		m.Decode(&s)
		fmt.Printf("%s called: %s %q\n", m.Channel, m.Event, s)
		close(done)
	})
	receiver.Flush(ctx) // the server now knows the listener

	sender, err := netcluster.Connect(ctx, "A", netcluster.WithDialer(srv.Dial))
	if err != nil {
		panic(err)
	}
	defer sender.Close(ctx)
	sender.Emit(ctx, "log", "TESTE")
	<-done
	// Output: A called: log "TESTE"
}

// Listeners match the whole event name with a regular expression, and an
// agent's own events reach its listeners in memory.
func ExampleAgent_On() {
	ctx := context.Background()
	srv, _ := server.New(server.Config{NoListen: true})
	srv.Start(ctx)
	defer srv.Close()
	a, _ := netcluster.Connect(ctx, "A", netcluster.WithDialer(srv.Dial))
	defer a.Close(ctx)

	got := make(chan string, 3)
	l, _ := a.On("log|audit", func(m *netcluster.Message) { got <- m.Event })
	for _, ev := range []string{"log", "logs", "audit"} {
		a.Emit(ctx, ev, nil)
	}
	fmt.Println(<-got, <-got)
	fmt.Println(l.Off(), l.Off())
	// Output:
	// log audit
	// true false
}
