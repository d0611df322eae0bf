package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/netcluster/netcluster"
)

// closeTimeout bounds closing an agent.
const closeTimeout = 2 * time.Second

// maxStdinData bounds the data emit reads from standard input: the
// default maxframe.
const maxStdinData = 16 << 20

// emit connects to a channel, emits the event -n times (once by default)
// -interval apart, waits until the server has them, disconnects, and says
// what it sent. The data is JSON (null if absent), or with -text the text
// as it is; "-" reads it from standard input.
func emit(ctx context.Context, c *client, args []string) error {
	channel, event := args[0], args[1]
	data, err := emitData(c, args[2:])
	if err != nil {
		return err
	}
	count := max(c.o.count, 1)
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	a, err := netcluster.Connect(cctx, channel, c.agentOptions(netcluster.WithoutReconnect())...)
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	sent := 0
	for ; sent < count && err == nil; sent++ {
		if sent > 0 && c.o.interval > 0 {
			select {
			case <-time.After(c.o.interval):
			case <-ctx.Done():
				err = ctx.Err()
				continue
			}
		}
		if c.o.text {
			err = a.EmitRaw(ctx, event, data)
		} else {
			err = a.Emit(ctx, event, json.RawMessage(data))
		}
	}
	if err != nil {
		sent--
	}
	fctx, fcancel := context.WithTimeout(context.Background(), c.o.timeout)
	defer fcancel()
	if ferr := a.Flush(fctx); err == nil {
		err = ferr
	}
	if cerr := a.Close(fctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("emit: after %d of %d: %w", sent, count, err)
	}
	return confirmEmit(c, channel, event, data, sent)
}

// emitData returns the data emit sends, checking that it is JSON unless
// -text.
func emitData(c *client, args []string) ([]byte, error) {
	if len(args) == 0 {
		if c.o.text {
			return nil, usageErrorf("emit: -text needs the DATA argument (or - for standard input)")
		}
		return []byte("null"), nil
	}
	data := []byte(args[0])
	if args[0] == "-" {
		if c.inREPL {
			return nil, usageErrorf("emit: DATA - (standard input) is not available in the REPL")
		}
		if c.in == nil {
			return nil, usageErrorf("emit: no standard input to read DATA from")
		}
		b, err := io.ReadAll(io.LimitReader(c.in, maxStdinData+1))
		if err != nil {
			return nil, fmt.Errorf("emit: reading DATA from standard input: %w", err)
		}
		if len(b) > maxStdinData {
			return nil, fmt.Errorf("emit: DATA from standard input is over %d bytes", maxStdinData)
		}
		data = b
		if c.o.text {
			data = bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
		}
	}
	if !c.o.text {
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			return nil, usageErrorf("emit: argument DATA: not valid JSON: %v (-text sends plain text)", err)
		}
	}
	return data, nil
}

// confirmEmit says what emit sent: a line for people, or with -json an
// object.
func confirmEmit(c *client, channel, event string, data []byte, n int) error {
	if c.o.json {
		b, _ := json.Marshal(map[string]any{"channel": channel, "event": event, "count": n, "bytes": len(data), "text": c.o.text})
		_, err := fmt.Fprintf(c.out, "%s\n", b)
		return err
	}
	shown := string(data)
	if c.o.text {
		shown = fmt.Sprintf("%q (text)", data)
	} else if len(data) > 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, data) == nil {
			shown = buf.String()
		}
	}
	if len(shown) > 80 {
		shown = shown[:77] + "..."
	}
	times := ""
	if n != 1 {
		times = fmt.Sprintf("%d × ", n)
	}
	_, err := fmt.Fprintf(c.out, "emitted %s%q on %s (%d bytes): %s\n", times, event, channel, len(data), shown)
	return err
}

// listenLine is what listen prints for each message.
type listenLine struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Agent   string          `json:"agent"`
	Node    string          `json:"node"`
	Raw     bool            `json:"raw,omitempty"`    // data was sent as bytes, shown as a string
	Base64  bool            `json:"base64,omitempty"` // data (bytes or JSON text) is not UTF-8: the string is its standard base64
}

// lineOf returns the JSON line for m, data compacted so that it stays on
// one line. The line is always valid UTF-8: data that is not (JSON or
// bytes) is shown in base64, names that are not have their bad bytes
// replaced by U+FFFD.
func lineOf(m *netcluster.Message) []byte {
	l := listenLine{Event: m.Event, Channel: m.Channel, Agent: m.Agent, Node: m.Node}
	var buf bytes.Buffer
	switch {
	case m.JSON && utf8.Valid(m.Data) && json.Compact(&buf, m.Data) == nil:
		l.Data = buf.Bytes()
	case utf8.Valid(m.Data):
		l.Data, _ = json.Marshal(string(m.Data))
		l.Raw = true
	default:
		l.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(m.Data))
		l.Raw, l.Base64 = !m.JSON, true
	}
	b, _ := json.Marshal(l)
	return append(b, '\n')
}

// listen prints the messages of a channel that match a pattern, one JSON
// object per line, until it has printed count of them (0: until ctx
// ends). The agent reconnects if the server restarts.
func listen(ctx context.Context, c *client, args []string) error {
	channel, pattern := args[0], ".*"
	if len(args) == 2 {
		pattern = args[1]
	}
	count := c.o.count
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	var (
		mu      sync.Mutex
		printed int
		werr    error
		done    = make(chan struct{})
	)
	a, err := netcluster.Connect(cctx, channel, c.agentOptions(
		// Dropped messages and the server's reasons for closing the
		// connection; the agent reconnects after the latter.
		netcluster.WithErrorHandler(func(err error) {
			fmt.Fprintf(c.errw, "ncclient: listen: %v\n", err)
		}))...)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		a.Close(ctx)
	}()
	_, err = a.On(pattern, func(m *netcluster.Message) {
		mu.Lock()
		defer mu.Unlock()
		if werr != nil || count > 0 && printed == count {
			return
		}
		if _, werr = c.out.Write(lineOf(m)); werr != nil {
			close(done)
			return
		}
		printed++
		if printed == count {
			close(done)
		}
	})
	if err != nil {
		return fmt.Errorf("listen: argument PATTERN: %w", err)
	}
	if err := a.Flush(cctx); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	if werr != nil {
		return fmt.Errorf("listen: writing output: %w", werr)
	}
	return nil
}
