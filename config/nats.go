package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Defaults and limits of the nats block and of durable channels.
const (
	DefaultNATSPrefix  = "netcluster"
	DefaultNATSCluster = "default"

	defaultNATSOutBuffer   = 8 << 20
	defaultDurableMaxAge   = 24 * time.Hour
	defaultDurableMaxBytes = 1 << 30
	defaultDurableReplicas = 1
	maxDurableReplicas     = 5
	maxPrefixLen           = 128
)

// NATS configures the backbone ("nats"): the server joins a NATS system and
// exchanges the messages of channels with propagatetonet with the other
// servers on it. A nil *NATS in [Config] means no backbone.
//
// Its String and Format methods, and [Config.MarshalJSON], print "REDACTED"
// in place of the password, the token and any password in a URL.
type NATS struct {
	// URLs ("urls") are the NATS servers to connect to, at least one, each
	// "nats://host[:port]" (also tls://, ws:// or wss://). nats.go picks
	// one and fails over to the others and to those the cluster announces.
	URLs []string
	// Name ("name") is the connection's name, shown by the NATS server;
	// "" means the node name. Default "".
	Name string
	// Creds ("creds") is the path of a NATS credentials file (a user JWT
	// and its nkey seed). At most one of creds, nkey, user and token is
	// set. Default "".
	Creds string
	// NKey ("nkey") is the path of a file holding an nkey user seed.
	// Default "".
	NKey string
	// User and Password ("user", "password") authenticate by name and
	// password; both or neither. Default "".
	User, Password string
	// Token ("token") authenticates by token. Default "".
	Token string
	// TLS ("tls") configures TLS towards the NATS servers; the zero value
	// means none unless a URL says tls:// or wss://.
	TLS TLS
	// Prefix ("prefix") is the first subject token(s) of every subject the
	// server uses, tokens of letters, digits, '_' and '-' joined by '.'.
	// Default "netcluster".
	Prefix string
	// Cluster ("cluster") keeps several netcluster systems apart on one NATS:
	// servers only see the servers of the same cluster. One token of
	// letters, digits, '_' and '-'. Default "default".
	Cluster string
	// OutBuffer ("outbuffer") bounds, in bytes, the outbound network
	// messages held while NATS is unreachable (nats.go's reconnect
	// buffer; the last message may pass it by one 64 KiB batch); beyond it
	// they are dropped and counted. Each durable channel's queue for
	// JetStream holds up to the larger of it and 1 MiB, plus one message.
	// 0 to 1<<32. Default 8 MiB.
	OutBuffer int
}

// TLS holds the TLS settings of the nats block ("tls"). Every field is a
// file path except ServerName.
type TLS struct {
	CA         string // "ca": PEM roots that verify the servers; "" means the system's
	Cert       string // "cert": PEM client certificate; set with Key
	Key        string // "key": PEM client key; set with Cert
	ServerName string // "servername": the name verified in the server's certificate; "" means the URL's host
}

// Enabled reports whether any TLS setting is given.
func (t TLS) Enabled() bool { return t != TLS{} }

// NewNATS returns a nats block with the defaults and no URL.
func NewNATS() *NATS {
	return &NATS{Prefix: DefaultNATSPrefix, Cluster: DefaultNATSCluster, OutBuffer: defaultNATSOutBuffer}
}

// Durable marks a channel durable ("durable"): its network messages are kept
// in a JetStream stream and every server consumes them with a durable
// consumer of its own, so a server that was down catches up.
type Durable struct {
	// MaxAge ("maxage") is how long messages are kept, a Go duration such as
	// "24h" or "90m", at least one second. Default "24h".
	MaxAge time.Duration
	// MaxBytes ("maxbytes") bounds the stream's size, an integer number of
	// bytes or a string such as "512MiB" or "1GB". Default "1GiB".
	MaxBytes int64
	// Replicas ("replicas") is the number of copies JetStream keeps, 1 to 5.
	// Default 1.
	Replicas int
}

// NewDurable returns a durable setting with the defaults.
func NewDurable() *Durable {
	return &Durable{MaxAge: defaultDurableMaxAge, MaxBytes: defaultDurableMaxBytes, Replicas: defaultDurableReplicas}
}

// ConnectName returns the connection name: Name, else nodename.
func (n *NATS) ConnectName(nodename string) string {
	if n.Name != "" {
		return n.Name
	}
	return nodename
}

// clone returns a deep copy of n.
func (n *NATS) clone() *NATS {
	if n == nil {
		return nil
	}
	d := *n
	d.URLs = slices.Clone(n.URLs)
	return &d
}

// String returns n with its secrets replaced by REDACTED.
func (n *NATS) String() string {
	if n == nil {
		return "<nil>"
	}
	urls := make([]string, len(n.URLs))
	for i, u := range n.URLs {
		urls[i] = RedactURL(u)
	}
	return fmt.Sprintf("NATS{URLs: %q, Name: %q, Creds: %q, NKey: %q, User: %q, Password: %s, Token: %s, TLS: %+v, Prefix: %q, Cluster: %q, OutBuffer: %d}",
		urls, n.Name, n.Creds, n.NKey, n.User, redactIf(n.Password), redactIf(n.Token), n.TLS, n.Prefix, n.Cluster, n.OutBuffer)
}

// Format prints n as String does, for every verb.
func (n *NATS) Format(f fmt.State, verb rune) { io.WriteString(f, n.String()) }

func redactIf(s string) string {
	if s == "" {
		return `""`
	}
	return redacted
}

// RedactURL returns u with the password of its user info, if any,
// replaced by REDACTED; a URL that does not parse is returned as
// "REDACTED" when it contains '@', else unchanged.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if strings.Contains(u, "@") {
			return redacted
		}
		return u
	}
	if p.User == nil {
		return u
	}
	if _, has := p.User.Password(); has {
		p.User = url.UserPassword(p.User.Username(), redacted)
	} else if p.User.Username() != "" {
		// A lone user name in a URL is a token for nats.go.
		p.User = url.User(redacted)
	}
	return p.String()
}

func (n *NATS) settings() []setting {
	return []setting{
		{"urls", urlsValue{&n.URLs}},
		{"name", stringValue{&n.Name, nil}},
		{"creds", stringValue{&n.Creds, nil}},
		{"nkey", stringValue{&n.NKey, nil}},
		{"user", stringValue{&n.User, nil}},
		{"password", stringValue{&n.Password, nil}},
		{"token", stringValue{&n.Token, nil}},
		{"tls", tlsValue{&n.TLS}},
		{"prefix", stringValue{&n.Prefix, checkPrefix}},
		{"cluster", stringValue{&n.Cluster, checkClusterName}},
		{"outbuffer", intValue{&n.OutBuffer, 0, 1 << 32}},
	}
}

func (t *TLS) settings() []setting {
	return []setting{
		{"ca", stringValue{&t.CA, nil}},
		{"cert", stringValue{&t.Cert, nil}},
		{"key", stringValue{&t.Key, nil}},
		{"servername", stringValue{&t.ServerName, nil}},
	}
}

func (du *Durable) settings() []setting {
	return []setting{
		{"maxage", durationValue{&du.MaxAge, time.Second}},
		{"maxbytes", sizeValue{&du.MaxBytes}},
		{"replicas", intValue{&du.Replicas, 1, maxDurableReplicas}},
	}
}

// problem is a cross-key problem of a block: key names the key to blame
// ("" for the block itself).
type problem struct {
	key string
	err error
	loc []string // the key's members from the top, to find its position; nil means key
}

// problems returns what is wrong across n's keys.
func (n *NATS) problems() []problem {
	var ps []problem
	if len(n.URLs) == 0 {
		ps = append(ps, problem{key: "urls", err: errors.New(`want at least one URL such as "nats://127.0.0.1:4222"`)})
	}
	var creds []string
	for _, c := range []struct{ key, v string }{{"creds", n.Creds}, {"nkey", n.NKey}, {"user", n.User}, {"token", n.Token}} {
		if c.v != "" {
			creds = append(creds, c.key)
		}
	}
	if len(creds) > 1 {
		ps = append(ps, problem{key: creds[1], err: fmt.Errorf("set with %s; give one way to authenticate: creds, nkey, user and password, or token", creds[0])})
	}
	switch {
	case n.User != "" && n.Password == "":
		ps = append(ps, problem{key: "user", err: errors.New("needs password")})
	case n.User == "" && n.Password != "":
		ps = append(ps, problem{key: "password", err: errors.New("needs user")})
	}
	switch {
	case n.TLS.Cert != "" && n.TLS.Key == "":
		ps = append(ps, problem{key: "tls", err: errors.New("cert needs key")})
	case n.TLS.Cert == "" && n.TLS.Key != "":
		ps = append(ps, problem{key: "tls", err: errors.New("key needs cert")})
	}
	return ps
}

// natsValue is the nats block: an object, or absent for no backbone.
type natsValue struct{ p **NATS }

func (nv natsValue) decode(d *decoder, v *hujson.Value, path string) {
	n := NewNATS()
	present := d.fields(v, path, "an object of NATS settings", n.settings())
	if present == nil {
		return
	}
	for _, pr := range n.problems() {
		off := v.StartOffset
		if at := present[pr.key]; at != nil {
			off = at.StartOffset
		}
		d.errorAt(off, childPath(path, pr.key), pr.err)
	}
	*nv.p = n
}

func (nv natsValue) check(l *errorList, path string) {
	n := *nv.p
	if n == nil {
		return
	}
	for _, s := range n.settings() {
		s.val.check(l, childPath(path, s.key))
	}
	for _, pr := range n.problems() {
		l.add(&Error{Path: childPath(path, pr.key), Err: pr.err})
	}
}

// urlsValue is a non-empty array of NATS URLs.
type urlsValue struct{ p *[]string }

func (uv urlsValue) decode(d *decoder, v *hujson.Value, path string) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.errorf(v.StartOffset, path, `want an array of URLs such as ["nats://127.0.0.1:4222"], got %s`, describe(v))
		return
	}
	var urls []string
	for i := range arr.Elements {
		var u string
		stringValue{&u, checkNATSURL}.decode(d, &arr.Elements[i], indexPath(path, i))
		urls = append(urls, u)
	}
	*uv.p = urls
}

func (uv urlsValue) check(l *errorList, path string) {
	for i := range *uv.p {
		stringValue{&(*uv.p)[i], checkNATSURL}.check(l, indexPath(path, i))
	}
}

// checkNATSURL checks a URL of scheme nats, tls, ws or wss with a host and
// an optional numeric port. Its errors never show a password.
func checkNATSURL(s string) error {
	shown := strconv.Quote(RedactURL(s))
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf(`want a URL such as "nats://127.0.0.1:4222", got %s`, shown)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf(`want the scheme nats://, tls://, ws:// or wss://, got %s`, shown)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("want a host in %s", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("want a port from 1 to 65535 in %s", shown)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want no path, query or fragment in %s", shown)
	}
	return nil
}

// tlsValue is the tls object of the nats block.
type tlsValue struct{ p *TLS }

func (tv tlsValue) decode(d *decoder, v *hujson.Value, path string) {
	var t TLS
	if d.fields(v, path, `an object {"ca", "cert", "key", "servername"}`, t.settings()) != nil {
		*tv.p = t
	}
}

func (tlsValue) check(*errorList, string) {} // NATS.problems checks cert and key

// durableValue is a channel's durable object.
type durableValue struct{ p **Durable }

func (dv durableValue) decode(d *decoder, v *hujson.Value, path string) {
	du := NewDurable()
	if d.fields(v, path, `an object {"maxage", "maxbytes", "replicas"}`, du.settings()) != nil {
		*dv.p = du
	}
}

func (dv durableValue) check(l *errorList, path string) {
	if *dv.p == nil {
		return
	}
	for _, s := range (*dv.p).settings() {
		s.val.check(l, childPath(path, s.key))
	}
}

// checkPrefix checks a subject prefix: tokens of [A-Za-z0-9_-] joined by
// dots, at most 128 bytes.
func checkPrefix(s string) error {
	if len(s) == 0 || len(s) > maxPrefixLen {
		return fmt.Errorf("want 1 to %d characters, got %d", maxPrefixLen, len(s))
	}
	for _, tok := range strings.Split(s, ".") {
		if err := tokenProblem(tok); err != nil {
			return fmt.Errorf("want subject tokens of letters, digits, '_' and '-' joined by '.', got %q: %w", s, err)
		}
	}
	return nil
}

// checkClusterName checks one subject token of [A-Za-z0-9_-], at most 64
// bytes.
func checkClusterName(s string) error {
	if len(s) > maxChannelName {
		return fmt.Errorf("want 1 to %d characters, got %d", maxChannelName, len(s))
	}
	if err := tokenProblem(s); err != nil {
		return fmt.Errorf("want one subject token of letters, digits, '_' and '-', got %q: %w", s, err)
	}
	return nil
}

func tokenProblem(tok string) error {
	if tok == "" {
		return errors.New("empty token")
	}
	if i := strings.IndexFunc(tok, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("found %q", []rune(tok[i:])[0])
	}
	return nil
}

// durationValue is a Go duration string of at least min.
type durationValue struct {
	p   *time.Duration
	min time.Duration
}

func (dv durationValue) want() string {
	return fmt.Sprintf(`a duration of at least %s such as "24h" or "90m"`, dv.min)
}

func (dv durationValue) decode(d *decoder, v *hujson.Value, path string) {
	if lit, ok := literal(v, '"'); ok {
		if dur, err := time.ParseDuration(lit.String()); err == nil && dur >= dv.min {
			*dv.p = dur
			return
		}
	}
	d.errorf(v.StartOffset, path, "want %s, got %s", dv.want(), describe(v))
}

func (dv durationValue) check(l *errorList, path string) {
	if *dv.p < dv.min {
		l.add(&Error{Path: path, Err: fmt.Errorf("want %s, got %s", dv.want(), *dv.p)})
	}
}

// sizeValue is a positive size in bytes: an integer, or a string of an
// integer and a unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB,
// TiB in powers of 1024).
type sizeValue struct{ p *int64 }

const sizeWant = `a size in bytes such as 1073741824 or "1GiB" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`

func (sv sizeValue) decode(d *decoder, v *hujson.Value, path string) {
	var text string
	if lit, ok := literal(v, '0'); ok {
		text = string(lit)
	} else if lit, ok := literal(v, '"'); ok {
		text = lit.String()
	}
	if n, ok := parseSize(text); ok {
		*sv.p = n
		return
	}
	d.errorf(v.StartOffset, path, "want %s, got %s", sizeWant, describe(v))
}

func (sv sizeValue) check(l *errorList, path string) {
	if *sv.p <= 0 {
		l.add(&Error{Path: path, Err: fmt.Errorf("want %s, got %d", sizeWant, *sv.p)})
	}
}

// parseSize parses a positive integer with an optional unit.
func parseSize(s string) (int64, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], s[i:]
	if num == "" {
		return 0, false
	}
	mult := map[string]int64{"": 1, "B": 1,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]
	if mult == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, false
	}
	return n * mult, true
}

// formatSize writes n as parseSize reads it, in the largest binary unit
// that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
