package server

// Parking: the reader of a connection that has been idle for parkAfter
// hands its socket to the server's parker and its goroutine ends; the
// parker starts a reader again when the socket becomes readable (or the
// connection is closed). A server holding many idle agents then holds no
// goroutine, and no stack, for them (S8: 1,000 idle agents held a reader's
// 4 to 8 KiB stack each). One epoll instance of the parker's watches the
// parked sockets, and a goroutine of its waits on it only while any is
// parked.

import (
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// parkAfter is how long a reader waits in its goroutine before it parks:
// agents that send more often than this (a stream, requests and replies)
// are woken by the runtime as before; each wake of a parked reader costs
// two epoll_ctl calls and a goroutine.
const parkAfter = 20 * time.Millisecond

// parker holds the parked connections of a server, by socket.
type parker struct {
	mu    sync.Mutex
	ep    *epoller // nil while none is parked
	conns map[int32]*conn
}

// epoller is the parker's epoll instance, and an eventfd that wakes its
// goroutine to end once nothing is parked.
type epoller struct{ epfd, evfd int }

// waitOrPark waits for the socket to become readable (waitReadable) for
// parkAfter, then parks the connection: parked reports that it did, and
// the reader must return (errParked) without ending the connection.
func (c *conn) waitOrPark() (parked bool, err error) {
	c.nc.SetReadDeadline(time.Now().Add(parkAfter))
	err = c.waitReadable()
	c.nc.SetReadDeadline(time.Time{})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, err
	}
	if c.srv.parked.add(c) {
		return true, nil
	}
	return false, c.waitReadable()
}

// add parks c, whose reader ends: the parker resumes it when its socket
// becomes readable or it is closed. False if it cannot (the connection
// is closing, or epoll failed): the reader waits on.
func (p *parker) add(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-c.done:
		// close has run unpark already (it closes done first, then takes
		// mu): parked now, c would never be resumed, its socket closed
		// under the epoll set without an event.
		return false
	default:
	}
	if p.ep == nil {
		ep, err := newEpoller()
		if err != nil {
			return false
		}
		p.ep, p.conns = ep, make(map[int32]*conn)
		go p.run(ep)
	}
	var added bool
	c.dw.raw.Control(func(fd uintptr) {
		// Level-triggered and once: bytes already there are reported at
		// once, and the socket is reported only once per park.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
		if unix.EpollCtl(p.ep.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			c.parkFD, added = int32(fd), true
		}
	})
	if added {
		p.conns[c.parkFD] = c
	}
	return added
}

// unpark resumes c if it is parked: close calls it, so that the reader
// meets the closed connection and ends it.
func (p *parker) unpark(c *conn) {
	p.mu.Lock()
	resumed := p.takeLocked(c.parkFD, c)
	p.mu.Unlock()
	if resumed {
		go c.resume()
	}
}

// takeLocked removes the connection parked on fd (only if it is c, when c
// is not nil) from the parker and its epoll instance, and reports whether
// there was one; once none is left the goroutine is woken to end. p.mu
// is held.
func (p *parker) takeLocked(fd int32, c *conn) bool {
	got, ok := p.conns[fd]
	if !ok || c != nil && got != c {
		return false
	}
	delete(p.conns, fd)
	unix.EpollCtl(p.ep.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	if len(p.conns) == 0 {
		unix.Write(p.ep.evfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	return true
}

// run waits for parked sockets to become readable and resumes their
// connections, until none is parked.
func (p *parker) run(ep *epoller) {
	defer ep.close()
	var events [64]unix.EpollEvent
	var resume []*conn
	for {
		n, err := unix.EpollWait(ep.epfd, events[:], -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.mu.Lock()
			p.failLocked()
			p.mu.Unlock()
			return
		}
		resume = resume[:0]
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(ep.evfd) {
				var b [8]byte
				unix.Read(ep.evfd, b[:])
				continue
			}
			if c := p.conns[ev.Fd]; c != nil && p.takeLocked(ev.Fd, nil) {
				resume = append(resume, c)
			}
		}
		done := len(p.conns) == 0
		if done {
			p.ep, p.conns = nil, nil
		}
		p.mu.Unlock()
		for i, c := range resume {
			go c.resume()
			resume[i] = nil
		}
		if done {
			return
		}
	}
}

// failLocked resumes every parked connection: epoll failed. p.mu is held.
func (p *parker) failLocked() {
	for fd, c := range p.conns {
		p.takeLocked(fd, nil)
		go c.resume()
	}
	p.ep, p.conns = nil, nil
}

func newEpoller() (*epoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	return &epoller{epfd: epfd, evfd: evfd}, nil
}

func (ep *epoller) close() {
	unix.Close(ep.epfd)
	unix.Close(ep.evfd)
}
