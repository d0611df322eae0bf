package main

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/systemd"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/server"
)

// passedListeners returns the sockets systemd passed (socket activation)
// by the channel each is for: the channel its FileDescriptorName= names,
// else the channel whose socket path (in the config's socket directory)
// it listens on. A socket that is for no channel is an error.
func passedListeners(bus *config.Config) (map[string]net.Listener, error) {
	ls, err := systemd.Listeners()
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	out := make(map[string]net.Listener, len(ls))
	dir := bus.ResolveSocketDir()
	for _, l := range ls {
		name := l.Name
		if bus.Channels[name] == nil {
			name = ""
			for _, ch := range bus.ChannelNames() {
				if transport.SocketPath(dir, ch) == l.Addr().String() {
					name = ch
				}
			}
		}
		err := error(nil)
		switch {
		case name == "":
			err = fmt.Errorf("socket activation: socket %q on %s is for no channel of the config: name the channel with FileDescriptorName=, or listen on %s",
				l.Name, l.Addr(), transport.SocketPath(dir, "<channel>"))
		case out[name] != nil:
			err = fmt.Errorf("socket activation: two sockets for channel %s (%s and %s)", name, out[name].Addr(), l.Addr())
		}
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		out[name] = l.Listener
	}
	return out, nil
}

func closeAll(ls map[string]net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// startWatchdog pings systemd's watchdog at half its interval while the
// server answers (a server whose state lock is stuck stops the pings, and
// systemd restarts it). It returns a function that stops the pings.
func startWatchdog(n *systemd.Notifier, srv *server.Server, log *slog.Logger) (stop func()) {
	every, err := systemd.WatchdogInterval()
	if err != nil {
		log.Warn("watchdog off", "err", err)
	}
	if every <= 0 || !n.Enabled() {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				srv.Addrs() // takes the server's lock
				notifyOrWarn(log, "WATCHDOG=1", n.Watchdog())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
