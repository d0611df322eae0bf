package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/control"
	"github.com/netcluster/netcluster/internal/wire"
)

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
	if c.ch.name != control.Channel {
		return perr(wire.CodeForbidden, "control requests are accepted only on the %s channel", control.Channel)
	}
	body := s.control(r.Body, c)
	c.sendControl(wire.AppendRequest(nil, wire.TypeReply, wire.Request{ID: r.ID, Body: body}))
	return nil
}

// control runs one request and returns the reply body. from is the asking
// connection, for the logs.
func (s *Server) control(body []byte, from *conn) []byte {
	res, err := s.runControl(body, from)
	var rep control.Reply
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.OK = true
		rep.Result, err = json.Marshal(res)
		if err != nil {
			rep = control.Reply{Error: fmt.Sprintf("internal error: encoding the result: %v", err)}
		}
	}
	out, err := json.Marshal(rep)
	if err != nil { // a control.Reply always marshals
		return []byte(`{"ok":false,"error":"internal error"}`)
	}
	return out
}

func (s *Server) runControl(body []byte, from *conn) (any, error) {
	if len(body) > maxRequestBody {
		return nil, fmt.Errorf("request too large: %d bytes, limit %d", len(body), maxRequestBody)
	}
	req, err := control.ParseRequest(body)
	if err != nil {
		return nil, err
	}
	if !s.controlOn() {
		return nil, errors.New("control is off on this server (startcontrol: false)")
	}
	cmd, err := req.Check()
	if err != nil {
		return nil, err
	}
	run := controlHandlers[cmd.Name]
	if run == nil { // a test checks every command has a handler
		return nil, fmt.Errorf("internal error: command %q has no handler", cmd.Name)
	}
	return run(s, req, from)
}

// controlHandler runs one control command whose request passed
// control.Request.Check.
type controlHandler func(s *Server, req *control.Request, from *conn) (any, error)

// controlHandlers are the server's side of control.Commands, by name. It
// is set by init, as its handlers lead back to runControl, which reads it.
var controlHandlers map[string]controlHandler

func init() { controlHandlers = controlTable() }

func controlTable() map[string]controlHandler {
	return map[string]controlHandler{
		control.CmdShowConfig: func(s *Server, _ *control.Request, _ *conn) (any, error) {
			return s.Bus(), nil
		},
		control.CmdReloadConfig: func(s *Server, req *control.Request, from *conn) (any, error) {
			return s.controlReload(req.Path, from)
		},
		control.CmdShowChannel: func(s *Server, req *control.Request, _ *conn) (any, error) {
			ci, ok := s.Channel(req.Channel)
			if !ok {
				return nil, s.unknownChannel(req.Channel)
			}
			return ci, nil
		},
		control.CmdShowClient: func(s *Server, req *control.Request, _ *conn) (any, error) {
			if _, ok := s.Channel(req.Channel); !ok {
				return nil, s.unknownChannel(req.Channel)
			}
			ai, ok := s.Agent(req.Channel, req.ID)
			if !ok {
				return nil, fmt.Errorf("no agent %q on channel %q", req.ID, req.Channel)
			}
			return ai, nil
		},
		control.CmdStats: func(s *Server, _ *control.Request, _ *conn) (any, error) {
			return s.controlStats(), nil
		},
		control.CmdChannels: func(s *Server, _ *control.Request, _ *conn) (any, error) {
			return s.Bus().ChannelNames(), nil
		},
	}
}

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
func (s *Server) controlReload(path string, from *conn) (*control.ReloadResult, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("reloadconfig: path %q is not absolute; the server reads it, and its working directory is not yours", path)
	}
	// The server reads for a requester only what they could read
	// themselves. Without peer credentials (in-process agents, Windows
	// pipes, whose ACL admits the server's user and administrators) the
	// requester is taken to be the server's own user.
	var bus *config.Config
	var err error
	if from != nil && from.uid >= 0 {
		bus, err = config.LoadAs(path, from.uid)
	} else {
		bus, err = config.Load(path)
	}
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
	res := &control.ReloadResult{Source: path, Channels: after, Added: []string{}, Removed: []string{}}
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
func (s *Server) controlStats() *control.Stats {
	st := s.Stats()
	out := &control.Stats{
		NodeID:   st.NodeID,
		Started:  s.startTime(),
		Uptime:   st.Uptime,
		Agents:   st.Agents,
		Channels: make([]control.ChannelStats, 0, len(st.Channels)),
		Totals:   controlChannelStats(st.Totals, st.Agents),
		Network:  st.Network,
		Backbone: st.Backbone,
	}
	for _, ci := range st.Channels {
		out.Channels = append(out.Channels, controlChannelStats(ci, len(ci.Agents)))
	}
	return out
}

func controlChannelStats(ci ChannelInfo, agents int) control.ChannelStats {
	return control.ChannelStats{Name: ci.Name, Agents: agents, ChannelCounters: ci.ChannelCounters, Rates: ci.Rates}
}
