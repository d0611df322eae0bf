package control

import (
	"context"
	"encoding/json"
	"fmt"
)

// call makes req and decodes its result into a new T.
func call[T any](ctx context.Context, c *Client, req Request) (*T, error) {
	res, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(res, v); err != nil {
		return nil, fmt.Errorf("control: %s: unreadable result: %w", req.Cmd, err)
	}
	return v, nil
}

// Stats returns the server's counters (the stats command).
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	return call[Stats](ctx, c, Request{Cmd: CmdStats})
}

// Channels returns the server's channel names, sorted (channels).
func (c *Client) Channels(ctx context.Context) ([]string, error) {
	names, err := call[[]string](ctx, c, Request{Cmd: CmdChannels})
	if err != nil {
		return nil, err
	}
	return *names, nil
}

// Channel describes a channel and its agents (showchannel).
func (c *Client) Channel(ctx context.Context, name string) (*ChannelInfo, error) {
	return call[ChannelInfo](ctx, c, Request{Cmd: CmdShowChannel, Channel: name})
}

// Agent describes one agent of a channel (showclient).
func (c *Client) Agent(ctx context.Context, channel, id string) (*AgentInfo, error) {
	return call[AgentInfo](ctx, c, Request{Cmd: CmdShowClient, Channel: channel, ID: id})
}

// Config returns the configuration in force as JSON, secrets redacted
// (showconfig).
func (c *Client) Config(ctx context.Context) (json.RawMessage, error) {
	return c.Do(ctx, Request{Cmd: CmdShowConfig})
}

// ReloadConfig has the server read and apply the config file at path, an
// absolute path on the server's host: all of it, or on error none of it
// (reloadconfig).
func (c *Client) ReloadConfig(ctx context.Context, path string) (*ReloadResult, error) {
	return call[ReloadResult](ctx, c, Request{Cmd: CmdReloadConfig, Path: path})
}
