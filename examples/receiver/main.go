// Command receiver is the seed README's receiver in Go: it listens to
// "log" on channel B and exits after the first one.
//
//	go run ./examples/receiver   # with ncserver running on its default config
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/netcluster/netcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	agent, err := netcluster.Connect(ctx, "B")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	agent.Once("log", func(m *netcluster.Message) {
		fmt.Printf("%s called: %s\n", m.Channel, m.Data)
		close(done)
	})
	select {
	case <-done:
	case <-ctx.Done():
	}
	if err := agent.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
}
