package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/wire"
)

// The control commands. docs/CONTROL.md describes each request and reply.
const (
	CmdShowConfig   = "showconfig"
	CmdReloadConfig = "reloadconfig"
	CmdShowChannel  = "showchannel"
	CmdShowClient   = "showclient"
	CmdStats        = "stats"
	CmdChannels     = "channels"
)

// ControlCommands lists the control commands, sorted.
func ControlCommands() []string {
	return []string{CmdChannels, CmdReloadConfig, CmdShowChannel, CmdShowClient, CmdShowConfig, CmdStats}
}

// maxRequestBody bounds the JSON body of a control request. Requests are
// a few short strings; anything larger is refused with an error reply.
const maxRequestBody = 64 << 10

// handleRequest answers a control request. Only agents connected directly
// to the control channel may make them: a Request frame elsewhere closes
// the connection with a forbidden error. Messages that reach the control
// channel by propagation are events like any other and never act.
//
// Every problem with the request itself (bad JSON, unknown command,
// unknown channel or agent, a config file that does not load) is answered
// with an error reply, and the connection stays open. The reply goes to the
// asking connection only.
func (s *Server) handleRequest(c *conn, r wire.Request) error {
	if c.ch.name != config.ControlChannel {
		return perr(wire.CodeForbidden, "control requests are accepted only on the %s channel", config.ControlChannel)
	}
	body := s.control(r.Body, c)
	c.sendControl(wire.AppendRequest(nil, wire.TypeReply, wire.Request{ID: r.ID, Body: body}))
	return nil
}

// control runs one request and returns the reply body. from is the asking
// connection, for the logs.
func (s *Server) control(body []byte, from *conn) []byte {
	res, err := s.runControl(body, from)
	var rep ControlReply
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.OK = true
		rep.Result, err = json.Marshal(res)
		if err != nil {
			rep = ControlReply{Error: fmt.Sprintf("internal error: encoding the result: %v", err)}
		}
	}
	out, err := json.Marshal(rep)
	if err != nil { // a ControlReply always marshals
		return []byte(`{"ok":false,"error":"internal error"}`)
	}
	return out
}

func (s *Server) runControl(body []byte, from *conn) (any, error) {
	if len(body) > maxRequestBody {
		return nil, fmt.Errorf("request too large: %d bytes, limit %d", len(body), maxRequestBody)
	}
	req, err := parseControlRequest(body)
	if err != nil {
		return nil, err
	}
	if !s.controlOn() {
		return nil, errors.New("control is off on this server (startcontrol: false)")
	}
	switch req.Cmd {
	case CmdShowConfig:
		if err := req.noArgs(); err != nil {
			return nil, err
		}
		return s.Bus(), nil
	case CmdReloadConfig:
		if err := req.want("path"); err != nil {
			return nil, err
		}
		return s.controlReload(req.Path, from)
	case CmdShowChannel:
		if err := req.want("channel"); err != nil {
			return nil, err
		}
		ci, ok := s.Channel(req.Channel)
		if !ok {
			return nil, s.unknownChannel(req.Channel)
		}
		return ci, nil
	case CmdShowClient:
		if err := req.want("channel", "id"); err != nil {
			return nil, err
		}
		if _, ok := s.Channel(req.Channel); !ok {
			return nil, s.unknownChannel(req.Channel)
		}
		ai, ok := s.Agent(req.Channel, req.ID)
		if !ok {
			return nil, fmt.Errorf("no agent %q on channel %q", req.ID, req.Channel)
		}
		return ai, nil
	case CmdStats:
		if err := req.noArgs(); err != nil {
			return nil, err
		}
		return s.controlStats(), nil
	case CmdChannels:
		if err := req.noArgs(); err != nil {
			return nil, err
		}
		return s.Bus().ChannelNames(), nil
	case "":
		return nil, fmt.Errorf(`missing "cmd"; want one of %s`, strings.Join(ControlCommands(), ", "))
	}
	return nil, fmt.Errorf("unknown command %q; want one of %s", req.Cmd, strings.Join(ControlCommands(), ", "))
}

// parseControlRequest decodes a request body strictly: unknown fields and
// trailing data are errors, so a typo never passes silently.
func parseControlRequest(body []byte) (*ControlRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	req := new(ControlRequest)
	if err := dec.Decode(req); err != nil {
		return nil, fmt.Errorf("bad request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bad request: data after the JSON object")
	}
	return req, nil
}

// want checks that the request has the named fields, and no others.
func (r *ControlRequest) want(fields ...string) error {
	given := map[string]string{"path": r.Path, "channel": r.Channel, "id": r.ID}
	for _, f := range fields {
		if given[f] == "" {
			return fmt.Errorf("%s: missing %q", r.Cmd, f)
		}
	}
	for _, f := range []string{"channel", "id", "path"} {
		if given[f] != "" && !slices.Contains(fields, f) {
			return fmt.Errorf("%s: unexpected field %q", r.Cmd, f)
		}
	}
	return nil
}

func (r *ControlRequest) noArgs() error { return r.want() }

func (s *Server) controlOn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bus.StartControl
}

func (s *Server) unknownChannel(name string) error {
	return fmt.Errorf("unknown channel %q; the channels are %s", name, strings.Join(s.Bus().ChannelNames(), ", "))
}

// controlReload reads the config file at path and applies it with Reload:
// all of it, or on any error none of it. A file that leaves socketdir
// empty keeps the socket directory in force, which may have come from
// ncserver's -socketdir flag or the environment of the server's start:
// the sockets do not move because the client's reload named no directory.
func (s *Server) controlReload(path string, from *conn) (*ControlReload, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("reloadconfig: path %q is not absolute; the server reads it, and its working directory is not yours", path)
	}
	bus, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	before := s.Bus()
	if bus.SocketDir == "" {
		bus.SocketDir = before.SocketDir
	}
	if err := s.Reload(bus); err != nil {
		return nil, err
	}
	after := s.Bus().ChannelNames()
	old := before.ChannelNames()
	res := &ControlReload{Source: path, Channels: after, Added: []string{}, Removed: []string{}}
	for _, n := range after {
		if !slices.Contains(old, n) {
			res.Added = append(res.Added, n)
		}
	}
	for _, n := range old {
		if !slices.Contains(after, n) {
			res.Removed = append(res.Removed, n)
		}
	}
	agent := ""
	if from != nil {
		agent = from.id
	}
	s.log.Info("config reloaded by control request", "path", path, "agent", agent,
		"added", res.Added, "removed", res.Removed)
	return res, nil
}

// controlStats returns the stats command's result: Stats without the
// agent lists.
func (s *Server) controlStats() *ControlStats {
	st := s.Stats()
	out := &ControlStats{
		NodeID:   st.NodeID,
		Started:  s.startTime(),
		Uptime:   st.Uptime,
		Agents:   st.Agents,
		Channels: make([]ControlChannelStats, 0, len(st.Channels)),
		Totals:   controlChannelStats(st.Totals, st.Agents),
		Network:  st.Network,
	}
	for _, ci := range st.Channels {
		out.Channels = append(out.Channels, controlChannelStats(ci, len(ci.Agents)))
	}
	return out
}

func controlChannelStats(ci ChannelInfo, agents int) ControlChannelStats {
	return ControlChannelStats{Name: ci.Name, Agents: agents, ChannelCounters: ci.ChannelCounters}
}
