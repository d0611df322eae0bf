// Command sender is the seed README's sender in Go: it emits "log" on
// channel A every second until interrupted.
//
//	go run ./examples/sender   # with ncserver running on its default config
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/netcluster/netcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	agent, err := netcluster.Connect(ctx, "A")
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := agent.Emit(ctx, "log", "TESTE"); err != nil {
			log.Print(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
