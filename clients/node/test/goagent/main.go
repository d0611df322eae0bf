// Command goagent is a Go agent for the Node client's interoperation
// tests of request/reply and queue groups:
//
//	goagent DIR serve CHANNEL PATTERN GROUP   answers each request with {"go": data}; prints READY
//	goagent DIR request CHANNEL EVENT JSON    prints the answer's JSON data
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netcluster/netcluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goagent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 5 {
		return errors.New("usage: goagent DIR serve CHANNEL PATTERN GROUP | goagent DIR request CHANNEL EVENT JSON")
	}
	dir, mode, channel := args[0], args[1], args[2]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := netcluster.Connect(cctx, channel, netcluster.WithSocketDir(dir))
	if err != nil {
		return err
	}
	defer a.Close(context.Background())
	switch mode {
	case "serve":
		_, err := a.OnQueue(args[3], args[4], func(m *netcluster.Message) {
			if m.IsRequest() {
				m.Reply(ctx, map[string]json.RawMessage{"go": m.Data})
			}
		})
		if err != nil {
			return err
		}
		if err := a.Flush(cctx); err != nil {
			return err
		}
		fmt.Println("READY", a.ID())
		<-ctx.Done()
		return nil
	case "request":
		m, err := a.Request(cctx, args[3], json.RawMessage(args[4]))
		if err != nil {
			return err
		}
		fmt.Println(string(m.Data))
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}
