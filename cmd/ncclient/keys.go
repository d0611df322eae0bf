package main

import (
	"context"
	"errors"
	"io"
	"sync"
)

// errInterrupted is what a command of the REPL returns when Ctrl-C stopped
// it.
var errInterrupted = errors.New("interrupted")

// keys sits between the terminal and the REPL's line editor, which is in
// raw mode, so Ctrl-C arrives as a byte, not a signal. While a line is
// edited, Ctrl-C ends it, and the REPL drops it (as bash does), instead of
// the editor's default of ending the input; while a command runs (listen,
// say), Ctrl-C cancels that command. A goroutine reads the terminal all
// along, so that Ctrl-C is seen while no line is being read; it ends with
// the input.
type keys struct {
	chunks chan keyChunk
	err    error // the input's error, once chunks is closed

	mu     sync.Mutex
	cancel context.CancelFunc // the running command's; nil when none

	// Used by the line editor's goroutine only.
	buf      []byte
	dropNext bool // the line being read was ended by Ctrl-C
}

type keyChunk struct {
	b      []byte
	cancel bool // a Ctrl-C while a line was edited: b is "\r"
}

func newKeys(src io.Reader) *keys {
	k := &keys{chunks: make(chan keyChunk, 64)}
	go k.pump(src)
	return k
}

func (k *keys) pump(src io.Reader) {
	b := make([]byte, 256)
	for {
		n, err := src.Read(b)
		start := 0
		for i := 0; i < n; i++ {
			if b[i] != 0x03 {
				continue
			}
			if i > start {
				k.chunks <- keyChunk{b: append([]byte(nil), b[start:i]...)}
			}
			start = i + 1
			k.mu.Lock()
			cancel := k.cancel
			k.mu.Unlock()
			if cancel != nil {
				cancel()
			} else {
				k.chunks <- keyChunk{b: []byte{'\r'}, cancel: true}
			}
		}
		if n > start {
			k.chunks <- keyChunk{b: append([]byte(nil), b[start:n]...)}
		}
		if err != nil {
			k.err = err
			close(k.chunks)
			return
		}
	}
}

// Read gives the line editor the terminal's bytes, one chunk at a time,
// so that it has handled what came before a Ctrl-C when it reads the "\r"
// that stands for it.
func (k *keys) Read(p []byte) (int, error) {
	if len(k.buf) == 0 {
		c, ok := <-k.chunks
		if !ok {
			return 0, k.err
		}
		k.buf = c.b
		if c.cancel {
			k.dropNext = true
		}
	}
	n := copy(p, k.buf)
	k.buf = k.buf[n:]
	return n, nil
}

// dropped reports (once) whether the line just read was ended by Ctrl-C.
func (k *keys) dropped() bool {
	d := k.dropNext
	k.dropNext = false
	return d
}

// running makes Ctrl-C call cancel until running(nil).
func (k *keys) running(cancel context.CancelFunc) {
	k.mu.Lock()
	k.cancel = cancel
	k.mu.Unlock()
}

// keysHistory is the line editor's history without the lines Ctrl-C ended.
type keysHistory struct {
	k    *keys
	hist interface {
		Add(string)
		Len() int
		At(int) string
	}
}

func (h keysHistory) Add(s string) {
	if !h.k.dropNext {
		h.hist.Add(s)
	}
}
func (h keysHistory) Len() int        { return h.hist.Len() }
func (h keysHistory) At(i int) string { return h.hist.At(i) }
