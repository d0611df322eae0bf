package server

import "time"

// netWarnState is what the last warning reported.
type netWarnState struct {
	sendDropped, unknown, refused, malformed uint64
}

// warnSoon logs what was refused or dropped since the last warning, at
// most once per netLogInterval: nothing is dropped silently, and a flood
// of bad datagrams does not flood the log.
func (n *netNode) warnSoon() {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	now := time.Now()
	if now.Sub(n.lastWarn) < netLogInterval {
		return
	}
	n.warnLocked(now)
}

// warnLocked logs the counters that grew since the last warning. lmu is
// held. Refused datagrams (wrong key, forgeries, replays) and unrecovered
// losses are logged by the Bus itself.
func (n *netNode) warnLocked(now time.Time) {
	cur := netWarnState{
		sendDropped: n.st.sendDropped.Load(),
		unknown:     n.st.unknownChannel.Load(),
		refused:     n.st.refused.Load(),
		malformed:   n.st.malformed.Load(),
	}
	if cur == n.warned {
		return
	}
	prev := n.warned
	n.warned, n.lastWarn = cur, now
	var args []any
	add := func(key string, now, before uint64) {
		if now > before {
			args = append(args, key, now-before)
		}
	}
	add("unknown_channel", cur.unknown, prev.unknown)
	add("refused_acceptnet", cur.refused, prev.refused)
	add("malformed", cur.malformed, prev.malformed)
	add("send_dropped", cur.sendDropped, prev.sendDropped)
	n.log.Warn("network: messages dropped", args...)
}

// reporter logs, every netLogInterval, drops that warnSoon held back.
func (n *netNode) reporter() {
	defer n.wg.Done()
	t := time.NewTicker(netLogInterval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			n.lmu.Lock()
			if now.Sub(n.lastWarn) >= netLogInterval {
				n.warnLocked(now)
			}
			n.lmu.Unlock()
		case <-n.stop:
			return
		}
	}
}
