package netcluster_test

import (
	"bufio"
	"io"
	"net"

	"github.com/netcluster/netcluster/internal/wire"
)

// fakeWelcome does a server's part of the handshake on nc, for the tests
// that stand in for a server the real one cannot be made to imitate: it
// reads the preamble and the Hello and answers with a version 2 Welcome.
// It returns the buffered reader and the frame reader of what follows.
func fakeWelcome(nc net.Conn) (*bufio.Reader, *wire.Reader, error) {
	br := bufio.NewReader(nc)
	if _, err := io.ReadFull(br, make([]byte, len(wire.Preamble))); err != nil {
		return nil, nil, err
	}
	rd := wire.NewReader(br, wire.DefaultMaxFrame)
	if _, err := rd.Next(); err != nil { // Hello
		return nil, nil, err
	}
	if _, err := nc.Write(wire.AppendWelcome(nil, wire.Welcome{Version: wire.VersionCalls, MaxFrame: wire.DefaultMaxFrame, ServerID: "0123456789abcdef"})); err != nil {
		return nil, nil, err
	}
	return br, rd, nil
}
