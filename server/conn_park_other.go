//go:build !linux

package server

// parker is empty on other systems: their readers wait in their
// goroutines (waitOrPark).
type parker struct{}

func (p *parker) unpark(c *conn) {}

// waitOrPark waits for the socket to become readable; it never parks.
func (c *conn) waitOrPark() (parked bool, err error) { return false, c.waitReadable() }
