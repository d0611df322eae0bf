// Package batchwriter is the write half that the agent and the server
// share: frames that any goroutine queues, under its owner's lock, in one
// byte buffer, written by one goroutine many per system call.
//
// The writer and the owner swap two buffers: the writer takes the queued
// bytes as its batch and leaves its spare buffer, emptied, as the new
// queue. Both are kept while frames flow, so a busy stream allocates
// nothing; once the writer has had nothing to write for IdleRelease it
// drops its spare and asks the owner to trim the queue's buffer (Trim).
package batchwriter

import (
	"errors"
	"io"
	"time"
)

// IdleRelease is how long a writer with nothing to write keeps its
// buffers before giving them back.
const IdleRelease = time.Second

// Queue is the owner's side of a writer. Its methods are called by the
// writer's goroutine only, one at a time; each takes the owner's lock.
type Queue interface {
	// Take hands the queued frames to the writer as batch and keeps
	// spare (empty; its capacity is there to be reused) as the new
	// queue. It returns an empty batch when nothing is queued, and
	// stop to end the writer (Run returns nil) instead of writing.
	Take(spare []byte) (batch []byte, stop bool)
	// Wrote tells how writing batch went: n bytes written, and the
	// write's error. After an error Run returns it.
	Wrote(batch []byte, n int, err error)
	// Idle is called once the writer has had nothing to write for
	// IdleRelease: the queue gives back a large empty buffer (see Trim).
	Idle()
}

// Keeper is a Queue that keeps some batches after Wrote, to write them
// again (the agent keeps its messages until the server acknowledges
// them). Kept reports whether it kept the batch Wrote was just given: the
// writer then does not reuse that batch as its spare, and passes a nil
// spare to the next Take.
type Keeper interface {
	Kept() bool
}

// Run writes what q queues to w, one batch per Write, until q's Take says
// stop or stop is closed while nothing is queued (both return nil), or a
// write fails (its error). wake must be signalled, without blocking (a
// channel with a buffer of one), whenever the queue stops being empty.
// Run waits on nothing else, so it returns only when told to or when a
// write fails: closing w ends a blocked write.
func Run(w io.Writer, q Queue, wake, stop <-chan struct{}) error {
	return run(w, q, wake, stop, IdleRelease, false)
}

// ErrIdle is what RunUntilIdle returns once its writer was idle.
var ErrIdle = errors.New("batchwriter: idle")

// RunUntilIdle is Run, except that once the writer has had nothing to
// write for IdleRelease it gives its buffers back (q.Idle) and returns
// ErrIdle instead of waiting on: an owner with many queues that are rarely
// written keeps no goroutine for each, and starts a writer again when it
// next queues (with wake signalled, as always).
func RunUntilIdle(w io.Writer, q Queue, wake, stop <-chan struct{}) error {
	return run(w, q, wake, stop, IdleRelease, true)
}

func run(w io.Writer, q Queue, wake, stop <-chan struct{}, idleAfter time.Duration, exitIdle bool) error {
	var spare []byte
	keeper, _ := q.(Keeper)
	idle := time.NewTimer(idleAfter)
	defer idle.Stop()
	for {
		batch, done := q.Take(spare[:0])
		if done {
			return nil
		}
		if len(batch) == 0 {
			idle.Reset(idleAfter)
			select {
			case <-wake:
			case <-idle.C:
				spare = nil
				q.Idle()
				if exitIdle {
					return ErrIdle
				}
				select { // idle and trimmed: nothing more to time
				case <-wake:
				case <-stop:
					return nil
				}
			case <-stop:
				return nil
			}
			continue
		}
		n, err := w.Write(batch)
		q.Wrote(batch, n, err)
		if err != nil {
			return err
		}
		spare = batch
		if keeper != nil && keeper.Kept() {
			spare = nil
		}
	}
}

// Trim returns buf, or nil if buf is empty and its capacity is above
// keep: what a Queue's Idle does with its buffer.
func Trim(buf []byte, keep int) []byte {
	if len(buf) == 0 && cap(buf) > keep {
		return nil
	}
	return buf
}
