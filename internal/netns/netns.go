//go:build linux

// Package netns builds throwaway networks of Linux network namespaces for
// multi-host tests: hosts joined by a bridge that lives in a namespace of
// its own, so no test datagram can reach the machine's real network.
//
// Use New to make a network of n hosts (10.99.0.1/24 … 10.99.0.n/24 on
// their eth0, multicast routed to eth0); it is removed by the test's
// Cleanup even when the test fails. Host.Command runs a process inside a
// host, Host.Do runs Go code there (sockets it opens stay in the
// namespace), and Host.NFT installs nftables rules such as random loss.
//
// Namespace names carry a random suffix, so parallel runs and leftovers of
// crashed runs never collide. Everything here needs root: Check says why
// it cannot run, and tests should skip with SkipPrefix in the message.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SkipPrefix starts the message of every namespace test that skips, so
// that CI (which runs as root) can fail when one did: grep for it.
const SkipPrefix = "NETNS-SKIP"

// EnvEnable is the environment variable that enables the namespace tests
// (they are slow): set it to 1.
const EnvEnable = "NETCLUSTER_NETNS"

// Subnet is the private subnet of every test network. Its addresses exist
// only inside the namespaces.
const Subnet = "10.99.0.0/24"

// Check returns why namespace tests cannot run here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veth, nftables)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs the ip command (iproute2)")
	}
	return nil
}

// EnvRequire is the environment variable that makes a namespace test
// fail, instead of skipping, when it cannot run: CI sets it to 1.
const EnvRequire = "NETCLUSTER_REQUIRE_NETNS"

// Skip skips t, with a message starting with SkipPrefix, unless the
// namespace tests are enabled (EnvEnable=1) and can run (Check). With
// EnvRequire=1 it fails t instead of skipping.
func Skip(t testing.TB) {
	t.Helper()
	why := ""
	if os.Getenv(EnvEnable) != "1" {
		why = fmt.Sprintf("set %s=1 to run the network namespace tests (as root)", EnvEnable)
	} else if err := Check(); err != nil {
		why = err.Error()
	}
	switch {
	case why == "":
	case os.Getenv(EnvRequire) == "1":
		t.Fatalf("%s=1 but the namespace test cannot run: %s", EnvRequire, why)
	default:
		t.Skipf("%s: %s", SkipPrefix, why)
	}
}

// Net is a test network: hosts on one bridge.
type Net struct {
	Bridge string // the bridge's namespace
	Hosts  []*Host
	id     string
}

// Host is one namespace of a Net.
type Host struct {
	Name string // namespace name
	Addr string // IPv4 address on eth0, e.g. "10.99.0.1"
	Dev  string // its interface: "eth0"
	net  *Net
	veth string // its veth peer in the bridge namespace
}

// New creates a network of n hosts, removed at the end of the test.
func New(t testing.TB, n int) *Net {
	t.Helper()
	var rb [3]byte
	rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	nt := &Net{Bridge: "nc" + id + "br", id: id}
	t.Cleanup(func() { nt.remove(t) })
	if err := nt.build(n); err != nil {
		t.Fatalf("netns: %v", err)
	}
	return nt
}

func (nt *Net) build(n int) error {
	br := nt.Bridge
	if err := ipCmd("netns", "add", br); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", br, "link", "set", "lo", "up"},
		{"-n", br, "link", "add", "br0", "type", "bridge"},
		{"-n", br, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	for i := 1; i <= n; i++ {
		h := &Host{Name: fmt.Sprintf("nc%sh%d", nt.id, i), Addr: fmt.Sprintf("10.99.0.%d", i), Dev: "eth0", net: nt, veth: fmt.Sprintf("v%sh%d", nt.id, i)}
		if err := ipCmd("netns", "add", h.Name); err != nil {
			return err
		}
		nt.Hosts = append(nt.Hosts, h)
		steps := [][]string{
			{"-n", h.Name, "link", "set", "lo", "up"},
			{"-n", h.Name, "link", "add", "eth0", "type", "veth", "peer", "name", h.veth, "netns", br},
			{"-n", br, "link", "set", h.veth, "master", "br0"},
			{"-n", br, "link", "set", h.veth, "up"},
			{"-n", h.Name, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			{"-n", h.Name, "link", "set", "eth0", "up"},
			{"-n", h.Name, "route", "add", "224.0.0.0/4", "dev", "eth0"},
		}
		for _, s := range steps {
			if err := ipCmd(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes the namespaces (their interfaces go with them).
func (nt *Net) remove(t testing.TB) {
	for _, h := range nt.Hosts {
		if err := ipCmd("netns", "del", h.Name); err != nil {
			t.Logf("netns cleanup: %v", err)
		}
	}
	if err := ipCmd("netns", "del", nt.Bridge); err != nil {
		t.Logf("netns cleanup: %v", err)
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Command returns a command that runs name inside the host's namespace
// (ip netns exec). The file system, and so Unix sockets, are shared with
// the caller.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Run runs a command inside the host and returns its combined output.
func (h *Host) Run(name string, args ...string) (string, error) {
	out, err := h.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// NFT applies an nftables script (nft -f) inside the host.
func (h *Host) NFT(script string) error {
	cmd := h.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %v: %s\nscript:\n%s", h.Name, err, bytes.TrimSpace(out), script)
	}
	return nil
}

// DropInput makes the host drop about percent % of the incoming UDP
// datagrams that match (an nft expression such as "udp dport 4454", or
// "meta l4proto udp" for all of them), at random.
func (h *Host) DropInput(percent int, match string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("needs nft (apt-get install -y nftables)")
	}
	return h.NFT(fmt.Sprintf(`table inet ncloss {
	chain input {
		type filter hook input priority 0;
		%s numgen random mod 100 < %d counter drop
	}
}
`, match, percent))
}

// Do runs f on an OS thread that has entered the host's namespace.
// Sockets f opens belong to the namespace and keep working from any
// goroutine afterwards. The thread is discarded when f returns, so the
// namespace never leaks to other goroutines.
func (h *Host) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		fd, err := unix.Open("/var/run/netns/"+h.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", h.Name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", h.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
