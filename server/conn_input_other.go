//go:build !unix

package server

// inputWait is empty on other systems: their readers wait with their read
// buffer (awaitInput).
type inputWait struct{}

func (c *conn) canAwait() bool                { return false }
func (c *conn) readNow(p []byte) (int, error) { return c.nc.Read(p) }
func (c *conn) waitReadable() error           { return nil }
