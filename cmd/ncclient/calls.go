package main

// request and reply: ncclient's side of request/reply and queue groups.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/netcluster/netcluster"
)

// defaultConcurrency is how many commands reply runs at once unless
// -concurrency says otherwise.
const defaultConcurrency = 4

// maxErrorText bounds the standard error of a failed command quoted in
// its error reply.
const maxErrorText = 1024

// request sends one request and prints the first reply: its data (JSON,
// or raw bytes as a JSON string), or with -json a line with its origin as
// listen prints. No reply within -timeout, or no responders, fail.
func request(ctx context.Context, c *client, args []string) error {
	channel, event := args[0], args[1]
	var data any // null
	if len(args) == 3 {
		data = json.RawMessage(args[2])
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	a, err := netcluster.Connect(ctx, channel, c.agentOptions(netcluster.WithoutReconnect())...)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		a.Close(cctx)
	}()
	m, err := a.Request(ctx, event, data)
	switch {
	case errors.Is(err, netcluster.ErrNoResponders):
		return fmt.Errorf("request %q on channel %s: no responders: no agent able to answer listens", event, channel)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("request %q on channel %s: no reply within %v", event, channel, c.o.timeout)
	case err != nil:
		return fmt.Errorf("request: %w", err)
	}
	line := lineOf(m)
	if !c.o.json {
		var l listenLine
		json.Unmarshal(line, &l)
		line = append(l.Data, '\n')
	}
	if _, err := c.out.Write(line); err != nil {
		return fmt.Errorf("request: writing output: %w", err)
	}
	return nil
}

// reply answers the requests of a channel that match a pattern by running
// a command: the request's data on its standard input, its standard
// output the answer (as JSON when it is JSON, else as a JSON string). With
// -group it answers as a member of that queue group. It runs at most
// -concurrency commands at once, each for at most -timeout, and answers
// {"error": "..."} when a command fails. It answers until ctx ends, or
// until it has answered -n requests.
func reply(ctx context.Context, c *client, args []string) error {
	channel, pattern, argv := args[0], args[1], c.o.command
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	a, err := netcluster.Connect(cctx, channel, c.agentOptions(
		netcluster.WithErrorHandler(func(err error) {
			fmt.Fprintf(c.errw, "ncclient: reply: %v\n", err)
		}))...)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	conc := c.o.concurrency
	if conc == 0 {
		conc = defaultConcurrency
	}
	var (
		slots    = make(chan struct{}, conc)
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered int
		done     = make(chan struct{})
	)
	defer func() {
		wg.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		a.Close(cctx)
	}()
	handle := func(m *netcluster.Message) {
		if !m.IsRequest() {
			return
		}
		select {
		case slots <- struct{}{}: // wait for a slot: the agent's queue holds the rest
		case <-done:
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			out := runSkill(ctx, argv, m.Data, c.o.timeout)
			if err := m.Reply(ctx, out); err != nil {
				fmt.Fprintf(c.errw, "ncclient: reply: %v\n", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			answered++
			if answered == c.o.count {
				close(done)
			}
		})
	}
	if c.o.group != "" {
		_, err = a.OnQueue(pattern, c.o.group, handle)
	} else {
		_, err = a.On(pattern, handle)
	}
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := a.Flush(cctx); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// runSkill runs argv with input on its standard input, for at most
// timeout, and returns the answer: its output as JSON when it is JSON
// (surrounding white space removed), else as a JSON string (one final
// newline removed), or {"error": "..."} saying why it failed.
func runSkill(ctx context.Context, argv []string, input []byte, timeout time.Duration) json.RawMessage {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second // a child holding the pipes open does not hang us
	err := cmd.Run()
	if err != nil {
		reason := err.Error()
		if ctx.Err() != nil {
			reason = fmt.Sprintf("timed out after %v", timeout)
		}
		text := strings.TrimSpace(stderr.String())
		if len(text) > maxErrorText {
			text = strings.ToValidUTF8(text[:maxErrorText], "") + "…"
		}
		if text != "" {
			reason += ": " + text
		}
		b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf("command %s: %s", argv[0], reason)})
		return b
	}
	out := stdout.Bytes()
	if trimmed := bytes.TrimSpace(out); len(trimmed) > 0 && json.Valid(trimmed) {
		return trimmed
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	out = bytes.TrimSuffix(out, []byte("\r"))
	b, _ := json.Marshal(string(out))
	return b
}
