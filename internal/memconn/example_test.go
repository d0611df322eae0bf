package memconn_test

import (
	"fmt"
	"io"

	"github.com/netcluster/netcluster/internal/memconn"
)

func ExamplePipe() {
	client, server := memconn.Pipe("embedded")
	defer server.Close()

	// Buffered: the Write returns before anyone reads.
	client.Write([]byte("hello"))
	client.Close()

	b, err := io.ReadAll(server) // what was written, then io.EOF
	fmt.Printf("%s %v %s\n", b, err, server.RemoteAddr())
	// Output: hello <nil> embedded
}
