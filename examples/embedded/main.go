// Command embedded is the seed README's "Local Server (in case you want to
// embed)" in Go: it runs a server from a config file (or the default) in
// this program until interrupted.
//
//	go run ./examples/embedded [config.json]
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/server"
)

func main() {
	bus := config.Default()
	if len(os.Args) > 1 {
		var err error
		if bus, err = config.Load(os.Args[1]); err != nil {
			log.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{Bus: bus})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for name, path := range srv.Addrs() {
		log.Printf("channel %s listening on %s", name, path)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
}
