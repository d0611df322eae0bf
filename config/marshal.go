package config

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// redacted replaces every secret in printed and marshaled output.
const redacted = "REDACTED"

// MarshalJSON returns c in the file format, every key given, secrets
// replaced by "REDACTED" (as the control command showconfig prints it).
// Source is left out. Without keys the output parses back to an equal
// Config; with keys it does not, as the secrets are gone.
func (c *Config) MarshalJSON() ([]byte, error) {
	f := fileConfig{
		Addr:                  c.Addr,
		Port:                  c.Port,
		DumpNet:               c.DumpNet,
		ConnectToNet:          c.ConnectToNet,
		StartControl:          c.StartControl,
		SocketDir:             c.SocketDir,
		SocketMode:            fmt.Sprintf("%04o", uint32(c.SocketMode)),
		ControlSocketMode:     fmt.Sprintf("%04o", uint32(c.ControlSocketMode)),
		MaxFrame:              c.MaxFrame,
		OutBuffer:             c.OutBuffer,
		SlowConsumer:          c.SlowConsumer,
		MaxConnections:        c.MaxConnections,
		MaxChannelConnections: c.MaxChannelConnections,
		MaxUIDConnections:     c.MaxUIDConnections,
		PartialFrames:         c.PartialFrames,
		MemoryLimit:           c.MemoryLimit,
		Interface:             c.Interface,
		TTL:                   c.TTL,
		Peers:                 c.Peers,
		NodeName:              c.NodeName,
		Keys:                  c.Keys,
		NetPayload:            c.NetPayload,
		MaxNetMessage:         c.MaxNetMessage,
		NetMemory:             c.NetMemory,
		MulticastLoop:         c.MulticastLoop,
		NetOffload:            c.NetOffload,
		NATS:                  c.NATS,
		Metrics:               c.Metrics,
		Channels:              c.Channels,
	}
	// Empty rather than null, which the parser rejects.
	if f.Peers == nil {
		f.Peers = []string{}
	}
	if f.Keys == nil {
		f.Keys = []Key{}
	}
	if f.Channels == nil {
		f.Channels = map[string]*Channel{}
	}
	return json.Marshal(f)
}

// fileConfig orders the keys of Config.MarshalJSON as in default.jsonc.
type fileConfig struct {
	Addr                  string              `json:"addr"`
	Port                  int                 `json:"port"`
	DumpNet               bool                `json:"dumpnet"`
	ConnectToNet          bool                `json:"connecttonet"`
	StartControl          bool                `json:"startcontrol"`
	SocketDir             string              `json:"socketdir"`
	SocketMode            string              `json:"socketmode"`
	ControlSocketMode     string              `json:"controlsocketmode"`
	MaxFrame              int                 `json:"maxframe"`
	OutBuffer             int                 `json:"outbuffer"`
	SlowConsumer          string              `json:"slowconsumer"`
	MaxConnections        int                 `json:"maxconnections"`
	MaxChannelConnections int                 `json:"maxchannelconnections"`
	MaxUIDConnections     int                 `json:"maxuidconnections"`
	PartialFrames         int                 `json:"partialframes"`
	MemoryLimit           int                 `json:"memorylimit"`
	Interface             string              `json:"interface"`
	TTL                   int                 `json:"ttl"`
	Peers                 []string            `json:"peers"`
	NodeName              string              `json:"nodename"`
	Keys                  []Key               `json:"keys"`
	NetPayload            int                 `json:"netpayload"`
	MaxNetMessage         int                 `json:"maxnetmessage"`
	NetMemory             int                 `json:"netmemory"`
	MulticastLoop         bool                `json:"multicastloop"`
	NetOffload            bool                `json:"netoffload"`
	NATS                  *NATS               `json:"nats,omitempty"`
	Metrics               string              `json:"metrics"`
	Channels              map[string]*Channel `json:"channels"`
}

// MarshalJSON returns ch in the file format.
func (ch *Channel) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Propagate      Propagation `json:"propagatetochannels"`
		PropagateToNet bool        `json:"propagatetonet"`
		DumpToConsole  bool        `json:"dumptoconsole"`
		AcceptNet      bool        `json:"acceptnet"`
		Durable        *Durable    `json:"durable,omitempty"`
	}{ch.Propagate, ch.PropagateToNet, ch.DumpToConsole, ch.AcceptNet, ch.Durable})
}

// MarshalJSON returns du in the file format: {"maxage": "24h0m0s",
// "maxbytes": "1GiB", "replicas": 1}.
func (du *Durable) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		MaxAge   string `json:"maxage"`
		MaxBytes string `json:"maxbytes"`
		Replicas int    `json:"replicas"`
	}{du.MaxAge.String(), formatSize(du.MaxBytes), du.Replicas})
}

// MarshalJSON returns n in the file format, every key given, the password,
// the token and passwords in URLs replaced by "REDACTED".
func (n *NATS) MarshalJSON() ([]byte, error) {
	urls := make([]string, len(n.URLs))
	for i, u := range n.URLs {
		urls[i] = RedactURL(u)
	}
	secret := func(s string) string {
		if s == "" {
			return ""
		}
		return redacted
	}
	return json.Marshal(struct {
		URLs      []string `json:"urls"`
		Name      string   `json:"name"`
		Creds     string   `json:"creds"`
		NKey      string   `json:"nkey"`
		User      string   `json:"user"`
		Password  string   `json:"password"`
		Token     string   `json:"token"`
		TLS       TLS      `json:"tls"`
		Prefix    string   `json:"prefix"`
		Cluster   string   `json:"cluster"`
		OutBuffer int      `json:"outbuffer"`
	}{urls, n.Name, n.Creds, n.NKey, n.User, secret(n.Password), secret(n.Token), n.TLS, n.Prefix, n.Cluster, n.OutBuffer})
}

// MarshalJSON returns t in the file format.
func (t TLS) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CA         string `json:"ca"`
		Cert       string `json:"cert"`
		Key        string `json:"key"`
		ServerName string `json:"servername"`
	}{t.CA, t.Cert, t.Key, t.ServerName})
}

// MarshalJSON returns k in the file format with the secret replaced:
// {"id":1,"secret":"REDACTED"}.
func (k Key) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":` + strconv.Itoa(int(k.ID)) + `,"secret":"` + redacted + `"}`), nil
}

// String returns "Key{ID: 1, Secret: REDACTED}".
func (k Key) String() string {
	return "Key{ID: " + strconv.Itoa(int(k.ID)) + ", Secret: " + redacted + "}"
}

// Format prints k as String does, for every verb, so that no fmt verb
// shows the secret.
func (k Key) Format(f fmt.State, verb rune) {
	io.WriteString(f, k.String())
}
