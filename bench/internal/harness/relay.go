package harness

// S0, the bare relay: the ceiling of a broker's shape on this machine. A
// publisher process writes netcluster Msg frames in 64 KiB batches to a
// relay process, which only walks the frames' length prefixes and forwards
// the whole frames of each read in one write to a subscriber process,
// which parses every frame (wire.ParseMsg) and counts. All over Unix
// sockets. No routing, no per-agent state, no acknowledgements: what any
// broker of this shape (netcluster's server, NATS's) pays on top is its own.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/netcluster/netcluster/internal/wire"
)

// relayBatch is what the publisher writes, and the relay reads, at a time.
const relayBatch = 64 << 10

// relay runs S0 once: relay, subscriber and publisher processes.
func (h *Harness) relay(ctx context.Context, tag string, n, size int) (Sample, error) {
	dir, err := os.MkdirTemp(h.tmp, "r")
	if err != nil {
		return Sample{}, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "relay")
	var g group
	defer func() { g.stop() }()
	rl, err := h.worker(ctx, Netcluster, tag, "relay", 0, "-addr", sock)
	if err != nil {
		return Sample{}, err
	}
	g = append(g, rl)
	if _, err := rl.expect(ctx, lineReady); err != nil {
		return Sample{}, err
	}
	sub, err := h.worker(ctx, Netcluster, tag, "rsub", 0, "-addr", sock, "-n", fmt.Sprint(n))
	if err != nil {
		return Sample{}, err
	}
	g = append(g, sub)
	if _, err := sub.expect(ctx, lineReady); err != nil {
		return Sample{}, err
	}
	pub, err := h.worker(ctx, Netcluster, tag, "rpub", 0, "-addr", sock, "-n", fmt.Sprint(n), "-size", fmt.Sprint(size))
	if err != nil {
		return Sample{}, err
	}
	g = append(g, pub)
	if _, err := pub.expect(ctx, lineReady); err != nil {
		return Sample{}, err
	}
	cpu0, err := cpuTime(rl.pid())
	if err != nil {
		return Sample{}, err
	}
	pub.send(lineGo)
	if _, err := pub.report(ctx); err != nil {
		return Sample{}, err
	}
	r, err := collect(ctx, sub, subGrace)
	if err != nil {
		return Sample{}, err
	}
	cpu1, err := cpuTime(rl.pid())
	if err != nil {
		return Sample{}, err
	}
	s := Sample{}
	if r.Recv < uint64(n) {
		s.Lost = uint64(n) - r.Recv
	}
	if r.Recv < 2 || r.Last <= r.First {
		return s, fmt.Errorf("%s: subscriber received %d messages", tag, r.Recv)
	}
	s.Values = []float64{float64(r.Recv-1) / (float64(r.Last-r.First) / 1e9), float64(cpu1-cpu0) / float64(r.Recv)}
	return s, nil
}

// relayRole is the relay process: it accepts the subscriber, then the
// publisher (each says which it is in its first byte), and forwards until
// the publisher is done; it then waits for Stop, so that the parent can
// read its CPU time.
func (w *workerArgs) relayRole(ctx context.Context, ctl *control, out *lineWriter) error {
	if err := w.forward(ctx, out); err != nil {
		return err
	}
	select {
	case <-ctl.stopCh:
	case <-ctx.Done():
	}
	return nil
}

func (w *workerArgs) forward(ctx context.Context, out *lineWriter) error {
	ln, err := net.Listen("unix", w.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() { <-ctx.Done(); ln.Close() }()
	out.printf(lineReady)
	var src, dst net.Conn
	for src == nil || dst == nil {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		var role [1]byte
		if _, err := io.ReadFull(c, role[:]); err != nil {
			return err
		}
		switch role[0] {
		case 'p':
			src = c
		case 's':
			dst = c
		default:
			return fmt.Errorf("relay: unknown role byte %q", role[0])
		}
	}
	go func() { <-ctx.Done(); src.Close(); dst.Close() }()
	buf := make([]byte, relayBatch)
	have := 0
	for {
		m, err := src.Read(buf[have:])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		have += m
		// Walk the length prefixes to the end of the last whole frame.
		off := 0
		for off+wire.LenSize <= have {
			end := off + wire.LenSize + int(binary.BigEndian.Uint32(buf[off:]))
			if end > have {
				break
			}
			off = end
		}
		if off == 0 && have == len(buf) {
			return fmt.Errorf("relay: a frame larger than %d bytes", len(buf))
		}
		if _, err := dst.Write(buf[:off]); err != nil {
			return err
		}
		have = copy(buf, buf[off:have])
	}
}

// relayPub writes n Msg frames of size bytes of data in 64 KiB batches.
func (w *workerArgs) relayPub(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", w.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'p'}); err != nil {
		return err
	}
	out.printf(lineReady)
	if err := waitGo(ctx, ctl); err != nil {
		return err
	}
	frame := wire.AppendMsg(nil, &wire.Msg{Channel: Channel, Agent: "pub", Event: w.subject, Data: make([]byte, w.size)})
	batch := make([]byte, 0, relayBatch)
	start := time.Now()
	for range w.n {
		if len(batch)+len(frame) > cap(batch) {
			if _, err := c.Write(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		batch = append(batch, frame...)
	}
	if _, err := c.Write(batch); err != nil {
		return err
	}
	out.done(Report{First: start.UnixNano(), Last: time.Now().UnixNano()})
	return nil
}

// relaySub parses and counts n Msg frames.
func (w *workerArgs) relaySub(ctx context.Context, ctl *control, out *lineWriter) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", w.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'s'}); err != nil {
		return err
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-ctl.stopCh:
		}
		c.Close()
	}()
	out.printf(lineReady)
	rd := wire.NewReader(bufio.NewReaderSize(c, relayBatch), wire.DefaultMaxFrame)
	var r Report
	var events int
	for r.Recv < uint64(w.n) {
		f, err := rd.Next()
		if err != nil {
			r.Stopped = true
			r.Lost = err.Error()
			break
		}
		v, err := wire.ParseMsg(f.Payload)
		if err != nil || f.Type != wire.TypeMsg {
			return fmt.Errorf("relay subscriber: bad frame (type %d): %v", f.Type, err)
		}
		events += len(v.Event)
		now := time.Now().UnixNano()
		if r.Recv == 0 {
			r.First = now
		}
		r.Last = now
		r.Recv++
	}
	if events == 0 && r.Recv > 0 {
		return errors.New("relay subscriber: messages without an event name")
	}
	out.done(r)
	return nil
}
