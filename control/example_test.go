package control_test

import (
	"context"
	"fmt"
	"net"

	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/server"
)

// A control client of a server embedded in the program, reached in
// memory; with a socket, Dial takes its path and no Options.Dial.
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

	c, err := control.Dial(ctx, "memory", &control.Options{
		AgentID: "ops",
		Dial: func(ctx context.Context, _ string) (net.Conn, error) {
			return srv.Dial(ctx, control.Channel)
		},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	names, err := c.Channels(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(names)
	ci, err := c.Channel(ctx, control.Channel)
	if err != nil {
		panic(err)
	}
	fmt.Println(ci.Agents[0].ID)
	_, err = c.Channel(ctx, "Z")
	fmt.Println(err)
	// Output:
	// [A B control]
	// ops
	// unknown channel "Z"; the channels are A, B, control
}
