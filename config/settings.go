package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/tailscale/hujson"
)

// A setting binds a key of the file to the field that holds it. The tables
// below are the one list of keys: decoding, Validate and the "did you mean"
// hints all read them.
type setting struct {
	key string
	val value
}

// value is the typed half of a setting.
type value interface {
	// decode stores v in the field, reporting problems to d.
	decode(d *decoder, v *hujson.Value, path string)
	// check reports problems with the field's current value to l.
	check(l *errorList, path string)
}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", stringValue{&c.Addr, checkAddr}},
		{"port", intValue{&c.Port, 1, 65535}},
		{"dumpnet", boolValue{&c.DumpNet}},
		{"connecttonet", boolValue{&c.ConnectToNet}},
		{"startcontrol", boolValue{&c.StartControl}},
		{"socketdir", stringValue{&c.SocketDir, nil}},
		{"socketmode", modeValue{&c.SocketMode}},
		{"controlsocketmode", modeValue{&c.ControlSocketMode}},
		{"maxframe", intValue{&c.MaxFrame, minMaxFrame, maxMaxFrame}},
		{"outbuffer", intValue{&c.OutBuffer, minOutBuffer, 1 << 32}},
		{"slowconsumer", stringValue{&c.SlowConsumer, checkSlowConsumer}},
		{"interface", stringValue{&c.Interface, nil}},
		{"ttl", intValue{&c.TTL, 0, 255}},
		{"peers", peersValue{&c.Peers}},
		{"nodename", stringValue{&c.NodeName, nil}},
		{"keys", keysValue{&c.Keys}},
		{"netpayload", intValue{&c.NetPayload, minNetPayload, maxNetPayload}},
		{"maxnetmessage", intValue{&c.MaxNetMessage, minMaxNetMessage, math.MaxInt}},
		{"netmemory", intValue{&c.NetMemory, 0, math.MaxInt}},
		{"multicastloop", boolValue{&c.MulticastLoop}},
		{"netoffload", boolValue{&c.NetOffload}},
		{"nats", natsValue{&c.NATS}},
		{"metrics", stringValue{&c.Metrics, checkMetrics}},
		{"channels", channelsValue{&c.Channels}},
		// Checked last, so that a zero Config's errors start with the
		// older keys.
		{"maxconnections", limitValue{intValue{&c.MaxConnections, 1, math.MaxInt32}}},
		{"maxchannelconnections", limitValue{intValue{&c.MaxChannelConnections, 1, math.MaxInt32}}},
		{"maxuidconnections", limitValue{intValue{&c.MaxUIDConnections, 1, math.MaxInt32}}},
		{"partialframes", limitValue{intValue{&c.PartialFrames, minOutBuffer, 1 << 40}}},
		{"memorylimit", limitValue{intValue{&c.MemoryLimit, minMemoryLimit, math.MaxInt64}}},
	}
}

func (ch *Channel) settings() []setting {
	return []setting{
		{"propagatetochannels", propagationValue{&ch.Propagate}},
		{"propagatetonet", boolValue{&ch.PropagateToNet}},
		{"dumptoconsole", boolValue{&ch.DumpToConsole}},
		{"acceptnet", boolValue{&ch.AcceptNet}},
		{"durable", durableValue{&ch.Durable}},
	}
}

// keySettings binds the keys of one element of "keys". The id goes to an
// int so that decode can tell "absent or invalid" (-1) from 0.
func keySettings(id *int, secret *[]byte) []setting {
	return []setting{
		{"id", intValue{id, 0, math.MaxUint8}},
		{"secret", secretValue{secret}},
	}
}

// literal returns v as a literal of kind k.
func literal(v *hujson.Value, k hujson.Kind) (hujson.Literal, bool) {
	lit, ok := v.Value.(hujson.Literal)
	return lit, ok && lit.Kind() == k
}

type boolValue struct{ p *bool }

func (b boolValue) decode(d *decoder, v *hujson.Value, path string) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || (lit.Kind() != 't' && lit.Kind() != 'f') {
		d.errorf(v.StartOffset, path, "want true or false, got %s", describe(v))
		return
	}
	*b.p = lit.Bool()
}

func (boolValue) check(*errorList, string) {}

// stringValue is a string, checked by valid if not nil.
type stringValue struct {
	p     *string
	valid func(string) error
}

func (s stringValue) decode(d *decoder, v *hujson.Value, path string) {
	lit, ok := literal(v, '"')
	if !ok {
		d.errorf(v.StartOffset, path, "want a string, got %s", describe(v))
		return
	}
	str := lit.String()
	if s.valid != nil {
		if err := s.valid(str); err != nil {
			d.errorAt(v.StartOffset, path, err)
			return
		}
	}
	*s.p = str
}

func (s stringValue) check(l *errorList, path string) {
	if s.valid != nil {
		if err := s.valid(*s.p); err != nil {
			l.add(&Error{Path: path, Err: err})
		}
	}
}

// intValue is an integer from min to max; max == math.MaxInt means no upper
// bound. JSON numbers with a fraction or exponent are not integers here.
type intValue struct {
	p        *int
	min, max int
}

func (n intValue) want() string {
	if n.max == math.MaxInt {
		return fmt.Sprintf("an integer of at least %d", n.min)
	}
	return fmt.Sprintf("an integer from %d to %d", n.min, n.max)
}

func (n intValue) decode(d *decoder, v *hujson.Value, path string) {
	if lit, ok := literal(v, '0'); ok {
		i, err := strconv.ParseInt(string(lit), 10, 0)
		if err == nil && int(i) >= n.min && int(i) <= n.max {
			*n.p = int(i)
			return
		}
	}
	d.errorf(v.StartOffset, path, "want %s, got %s", n.want(), describe(v))
}

func (n intValue) check(l *errorList, path string) {
	if *n.p < n.min || *n.p > n.max {
		l.add(&Error{Path: path, Err: fmt.Errorf("want %s, got %d", n.want(), *n.p)})
	}
}

// limitValue is an intValue that may also be 0, for its default.
type limitValue struct{ intValue }

func (n limitValue) decode(d *decoder, v *hujson.Value, path string) {
	if lit, ok := literal(v, '0'); ok && string(lit) == "0" {
		*n.p = 0
		return
	}
	n.intValue.decode(d, v, path)
}

func (n limitValue) check(l *errorList, path string) {
	if *n.p != 0 {
		n.intValue.check(l, path)
	}
}

// modeValue is a permission written as an octal string, "0000" to "0777".
type modeValue struct{ p *os.FileMode }

func (m modeValue) decode(d *decoder, v *hujson.Value, path string) {
	if lit, ok := literal(v, '"'); ok {
		if mode, ok := parseMode(lit.String()); ok && mode&0o600 == 0o600 {
			*m.p = mode
			return
		}
	}
	d.errorf(v.StartOffset, path, `want an octal mode string from "0600" to "0777" that lets the owner read and write, such as "0660", got %s`, describe(v))
}

func (m modeValue) check(l *errorList, path string) {
	switch {
	case *m.p&^0o777 != 0:
		l.add(&Error{Path: path, Err: fmt.Errorf("want permission bits within 0777, got %#o", uint32(*m.p))})
	case *m.p&0o600 != 0o600:
		// Connecting needs write permission: without it nobody, the
		// owner included, could connect.
		l.add(&Error{Path: path, Err: fmt.Errorf("want a mode that lets the owner read and write (0600 at least), got %#o", uint32(*m.p))})
	}
}

// parseMode parses one to four octal digits no greater than 0777.
func parseMode(s string) (os.FileMode, bool) {
	if len(s) == 0 || len(s) > 4 {
		return 0, false
	}
	var mode os.FileMode
	for _, r := range s {
		if r < '0' || r > '7' {
			return 0, false
		}
		mode = mode<<3 | os.FileMode(r-'0')
	}
	return mode, mode <= 0o777
}

// peersValue is an array of "host:port" strings.
type peersValue struct{ p *[]string }

func (pv peersValue) decode(d *decoder, v *hujson.Value, path string) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.errorf(v.StartOffset, path, `want an array of "host:port" strings, got %s`, describe(v))
		return
	}
	var peers []string // nil when empty, as in New
	for i := range arr.Elements {
		var peer string
		stringValue{&peer, checkPeer}.decode(d, &arr.Elements[i], indexPath(path, i))
		peers = append(peers, peer)
	}
	*pv.p = peers
}

func (pv peersValue) check(l *errorList, path string) {
	for i := range *pv.p {
		stringValue{&(*pv.p)[i], checkPeer}.check(l, indexPath(path, i))
	}
}

// keysValue is an array of {"id": 0-255, "secret": base64} objects with
// unique ids.
type keysValue struct{ p *[]Key }

func (kv keysValue) decode(d *decoder, v *hujson.Value, path string) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.errorf(v.StartOffset, path, `want an array of {"id", "secret"} objects, got %s`, describe(v))
		return
	}
	var keys []Key            // nil when empty, as in New
	seen := make(map[int]int) // id → index
	for i := range arr.Elements {
		elem, p := &arr.Elements[i], indexPath(path, i)
		id := -1
		var secret []byte
		present := d.fields(elem, p, `an object {"id": 0-255, "secret": "base64"}`, keySettings(&id, &secret))
		if present == nil {
			continue
		}
		for _, key := range []string{"id", "secret"} {
			if present[key] == nil {
				d.errorf(elem.StartOffset, p, "missing key %q", key)
			}
		}
		if id < 0 {
			continue
		}
		if j, dup := seen[id]; dup {
			d.errorf(present["id"].StartOffset, childPath(p, "id"), "duplicate key id %d (also %s)", id, indexPath(path, j))
			continue
		}
		seen[id] = i
		keys = append(keys, Key{ID: uint8(id), Secret: secret})
	}
	*kv.p = keys
}

func (kv keysValue) check(l *errorList, path string) {
	seen := make(map[uint8]int)
	for i, k := range *kv.p {
		p := indexPath(path, i)
		if len(k.Secret) != secretSize {
			l.add(&Error{Path: childPath(p, "secret"), Err: fmt.Errorf("want %d bytes, got %d", secretSize, len(k.Secret))})
		}
		if j, dup := seen[k.ID]; dup {
			l.add(&Error{Path: childPath(p, "id"), Err: fmt.Errorf("duplicate key id %d (also %s)", k.ID, indexPath(path, j))})
			continue
		}
		seen[k.ID] = i
	}
}

// secretValue is 32 bytes in standard base64. Its errors never show the
// value.
type secretValue struct{ p *[]byte }

func (s secretValue) decode(d *decoder, v *hujson.Value, path string) {
	lit, ok := literal(v, '"')
	if !ok {
		d.errorf(v.StartOffset, path, "want a base64 string of %d bytes, got %s", secretSize, kindName(v))
		return
	}
	b, err := base64.StdEncoding.Strict().DecodeString(lit.String())
	switch {
	case err != nil:
		d.errorf(v.StartOffset, path, "want standard base64 (with padding) of %d bytes; the value is not valid base64", secretSize)
	case len(b) != secretSize:
		d.errorf(v.StartOffset, path, "want standard base64 of %d bytes, got %d bytes", secretSize, len(b))
	default:
		*s.p = b
	}
}

func (secretValue) check(*errorList, string) {} // keysValue checks the length

// channelsValue is the object of channels by name.
type channelsValue struct{ p *map[string]*Channel }

func (cv channelsValue) decode(d *decoder, v *hujson.Value, path string) {
	chans := make(map[string]*Channel)
	ok := d.members(v, path, "an object of channels by name", func(name string, m *hujson.ObjectMember) {
		p := childPath(path, name)
		if err := channelNameProblem(name); err != nil {
			d.errorf(m.Name.StartOffset, p, "invalid channel name: %v", err)
		}
		ch := NewChannel()
		if name == ControlChannel {
			// No remote node reaches the control channel unless the file
			// says so explicitly.
			ch.AcceptNet = false
		}
		d.fields(&m.Value, p, "an object of channel settings", ch.settings())
		chans[name] = ch
	})
	if ok {
		*cv.p = chans
	}
}

func (cv channelsValue) check(l *errorList, path string) {
	if (*cv.p)[ControlChannel] == nil {
		l.add(&Error{Path: path, Err: fmt.Errorf("missing the %q channel", ControlChannel)})
	}
	for _, name := range slices.Sorted(maps.Keys(*cv.p)) {
		ch, p := (*cv.p)[name], childPath(path, name)
		if err := channelNameProblem(name); err != nil {
			l.add(&Error{Path: p, Err: fmt.Errorf("invalid channel name: %w", err)})
		}
		if ch == nil {
			l.add(&Error{Path: p, Err: errors.New("nil *Channel")})
			continue
		}
		for _, s := range ch.settings() {
			s.val.check(l, childPath(p, s.key))
		}
	}
}

// propagationValue is false, true or a regular expression string.
type propagationValue struct{ p *Propagation }

func (pv propagationValue) decode(d *decoder, v *hujson.Value, path string) {
	lit, ok := v.Value.(hujson.Literal)
	switch {
	case ok && lit.Kind() == 'f':
		*pv.p = PropagateNone()
	case ok && lit.Kind() == 't':
		*pv.p = PropagateAll()
	case ok && lit.Kind() == '"':
		src := lit.String()
		if src == "true" || src == "false" {
			d.errorf(v.StartOffset, path, "want %s without quotes, or a regular expression; to match a channel named %q write \"(?:%s)\"", src, src, src)
			return
		}
		re, err := compilePattern(src)
		if err != nil {
			d.errorf(v.StartOffset, path, "invalid regular expression: %v", err)
			return
		}
		*pv.p = Propagation{src: src, re: re}
	default:
		d.errorf(v.StartOffset, path, "want false, true or a regular expression string, got %s", describe(v))
	}
}

func (propagationValue) check(*errorList, string) {} // every Propagation is valid
