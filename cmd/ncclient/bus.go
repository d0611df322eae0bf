package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/netcluster/netcluster"
)

// closeTimeout bounds closing an agent.
const closeTimeout = 2 * time.Second

// emit connects to a channel, emits one event, waits until the server has
// it, and disconnects.
func emit(ctx context.Context, c *client, args []string) error {
	channel, event := args[0], args[1]
	var data any // null
	if len(args) == 3 {
		data = json.RawMessage(args[2])
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	a, err := netcluster.Connect(ctx, channel, c.agentOptions(netcluster.WithoutReconnect())...)
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	err = a.Emit(ctx, event, data)
	if err == nil {
		err = a.Flush(ctx)
	}
	if cerr := a.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
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
