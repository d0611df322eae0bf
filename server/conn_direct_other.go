//go:build !unix

package server

// initDirect leaves in-place writes off: agents on other systems connect
// through named pipes, whose writes are not the Unix stream socket's
// whole-or-nothing small writes (see directMax); their writers write.
func (c *conn) initDirect() {}

// sockBuf is what the connection's writer can write before the agent
// reads anything: on other systems, taken to be defaultSockBuf.
func (c *conn) sockBuf() int { return defaultSockBuf }
