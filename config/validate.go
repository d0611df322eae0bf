package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Validate checks c as [Parse] checks a file: every range, channel name,
// peer, key and mode, and that the control channel exists. It is for a
// Config built or changed in code; start from [New] or [Default], since zero
// values are not defaults (a zero Port is an error, not 4454). The errors
// name the key path but no file or position; see [Error].
func (c *Config) Validate() error {
	var l errorList
	for _, s := range c.settings() {
		s.val.check(&l, s.key)
	}
	for _, pr := range c.problems() {
		l.add(&Error{Path: pr.key, Err: pr.err})
	}
	return l.err()
}

// problems returns what is wrong across c's top-level keys; key is the
// path to blame.
func (c *Config) problems() []problem {
	var ps []problem
	if c.Addr == "" && c.NATS == nil {
		ps = append(ps, problem{key: "addr", err: fmt.Errorf("want an IP address such as %q, got \"\" (no multicast needs a nats block)", defaultAddr)})
	}
	if c.NATS == nil {
		for _, name := range c.ChannelNames() {
			if ch := c.Channels[name]; ch != nil && ch.Durable != nil {
				ps = append(ps, problem{
					key: childPath(childPath("channels", name), "durable"),
					err: errors.New("needs the nats block (durable channels live in JetStream)"),
					loc: []string{"channels", name, "durable"},
				})
			}
		}
	}
	return ps
}

// ValidChannelName reports whether name may name a channel: 1 to 64 ASCII
// letters, digits, '.', '_' and '-', other than "." and "..".
func ValidChannelName(name string) error {
	if err := channelNameProblem(name); err != nil {
		return fmt.Errorf("config: invalid channel name %q: %w", name, err)
	}
	return nil
}

func channelNameProblem(name string) error {
	if len(name) == 0 || len(name) > maxChannelName {
		return fmt.Errorf("want 1 to %d characters, got %d", maxChannelName, len(name))
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("want only letters, digits, '.', '_' and '-', found %q", []rune(name[i:])[0])
	}
	if name == "." || name == ".." {
		return errors.New(`"." and ".." are reserved`)
	}
	return nil
}

// checkAddr checks an IP address, or "" (no multicast; Config.problems
// checks that nats is set then).
func checkAddr(s string) error {
	if s == "" {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("want an IP address such as %q, got %q", defaultAddr, s)
	}
	return nil
}

func checkSlowConsumer(s string) error {
	if s != SlowConsumerDrop && s != SlowConsumerDisconnect {
		return fmt.Errorf("want %q or %q, got %q", SlowConsumerDrop, SlowConsumerDisconnect, s)
	}
	return nil
}

// checkPeer checks a "host:port" with a host and a numeric port.
func checkPeer(s string) error {
	return checkHostPort(s, true)
}

// checkMetrics checks "" (off) or a listen address "host:port", where the
// host may be empty.
func checkMetrics(s string) error {
	if s == "" {
		return nil
	}
	return checkHostPort(s, false)
}

func checkHostPort(s string, needHost bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf(`want "host:port", got %q`, s)
	}
	if needHost && host == "" {
		return fmt.Errorf(`want "host:port" with a host, got %q`, s)
	}
	if n, err := strconv.Atoi(port); err != nil || strings.Trim(port, "0123456789") != "" || n < 1 || n > 65535 {
		return fmt.Errorf(`want "host:port" with a port from 1 to 65535, got %q`, s)
	}
	return nil
}
