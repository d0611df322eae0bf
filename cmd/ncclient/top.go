package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/netcluster/netcluster/control"
)

// topEvery is how often top asks for the stats; the server's rates are
// over its own one-second samples.
const topEvery = time.Second

// top is a full-screen live view of the server's stats when stdout is a
// terminal, and the plain lines of stats -watch 1s otherwise.
func top(ctx context.Context, c *client, _ []string) error {
	if !isTerminal(c.out) || c.o.json {
		return watchStats(ctx, c, topEvery)
	}
	out := c.out.(*os.File)
	in, _ := c.in.(*os.File)
	if !isTerminal(c.in) {
		in = nil // no keys: q cannot quit, Ctrl-C (the signal) still does
	}
	c.ctlOpts.Reconnect = true // across a server restart
	m := &topModel{ctx: ctx, c: c}
	opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithOutput(out), tea.WithContext(ctx)}
	if in != nil {
		opts = append(opts, tea.WithInput(in))
	} else {
		opts = append(opts, tea.WithInput(nil))
	}
	_, err := tea.NewProgram(m, opts...).Run()
	if err != nil && ctx.Err() != nil {
		return nil // Ctrl-C or SIGTERM
	}
	if err != nil {
		return fmt.Errorf("top: %w", err)
	}
	return nil
}

// fetchStats asks the server for its stats.
func fetchStats(ctx context.Context, c *client) (*control.Stats, error) {
	res, err := c.request(ctx, control.Request{Cmd: control.CmdStats})
	if err != nil {
		return nil, err
	}
	var st control.Stats
	if err := json.Unmarshal(res, &st); err != nil {
		return nil, fmt.Errorf("unreadable result: %w", err)
	}
	return &st, nil
}

// watchStats prints the stats every interval as plain lines, one per
// channel (and per peer), until ctx ends: what top shows, for a pipe or a
// log.
func watchStats(ctx context.Context, c *client, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := fetchStats(ctx, c)
		if err != nil && ctx.Err() != nil {
			return nil // Ctrl-C or SIGTERM during a request: an end, not a failure
		}
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if c.o.json {
			b, _ := json.Marshal(st)
			fmt.Fprintf(c.out, "%s\n", b)
		} else {
			printWatchLines(c.out, st, time.Now())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func printWatchLines(w io.Writer, st *control.Stats, now time.Time) {
	ts := now.UTC().Format(time.RFC3339)
	for _, ch := range append(st.Channels, st.Totals) {
		r := ch.Rates
		if r == nil {
			r = &control.Rates{}
		}
		name := ch.Name
		if name == "*" {
			name = "TOTAL"
		}
		fmt.Fprintf(w, "%s channel=%s agents=%d in=%.1f/s %s/s out=%.1f/s %s/s dropped=%d (%.1f/s) slow=%d\n",
			ts, name, ch.Agents, r.MsgsIn, bytesText(r.BytesIn), r.MsgsOut, bytesText(r.BytesOut), ch.Dropped, r.Dropped, ch.Slow)
	}
	if n := st.Network; n != nil {
		for _, p := range n.Peers {
			pr := p.Rates
			if pr == nil {
				pr = &control.PeerRates{}
			}
			fmt.Fprintf(w, "%s peer=%s name=%s delivered=%.1f/s recovered=%d lost=%d\n", ts, p.Node, p.Name, pr.Delivered, p.Recovered, p.LostMessages)
		}
	}
}

// bytesText is a byte count for people: 512B, 1.5kB, 12.0MB.
func bytesText(b float64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.1fGB", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1fMB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1fkB", b/1e3)
	}
	return fmt.Sprintf("%.0fB", b)
}

// The top model: the last stats, the view, the sort order.

type (
	statsMsg struct {
		st  *control.Stats
		err error
	}
	tickMsg struct{}
)

const (
	viewChannels = iota
	viewNetwork
)

// channelSorts are the columns the channel view sorts by, in the order
// the s key cycles through them.
var channelSorts = []struct {
	name string
	key  func(control.ChannelStats) float64
}{
	{"name", nil},
	{"msgs/s in", func(c control.ChannelStats) float64 {
		return rate(c.Rates, func(r *control.Rates) float64 { return r.MsgsIn })
	}},
	{"msgs/s out", func(c control.ChannelStats) float64 {
		return rate(c.Rates, func(r *control.Rates) float64 { return r.MsgsOut })
	}},
	{"bytes/s in", func(c control.ChannelStats) float64 {
		return rate(c.Rates, func(r *control.Rates) float64 { return r.BytesIn })
	}},
	{"agents", func(c control.ChannelStats) float64 { return float64(c.Agents) }},
	{"dropped", func(c control.ChannelStats) float64 { return float64(c.Dropped) }},
}

func rate(r *control.Rates, f func(*control.Rates) float64) float64 {
	if r == nil {
		return 0
	}
	return f(r)
}

type topModel struct {
	ctx    context.Context
	c      *client
	st     *control.Stats
	err    error
	at     time.Time
	view   int
	sortBy int
	width  int
}

func (m *topModel) fetch() tea.Cmd {
	return func() tea.Msg {
		st, err := fetchStats(m.ctx, m.c)
		return statsMsg{st, err}
	}
}

func (m *topModel) Init() tea.Cmd { return m.fetch() }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case statsMsg:
		m.err = msg.err
		if msg.err == nil {
			m.st, m.at = msg.st, time.Now()
		}
		return m, tea.Tick(topEvery, func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.fetch()
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "esc", "ctrl+c":
			return m, tea.Quit
		case "1", "c":
			m.view = viewChannels
		case "2", "n":
			m.view = viewNetwork
		case "tab":
			m.view = 1 - m.view
		case "s":
			m.sortBy = (m.sortBy + 1) % len(channelSorts)
		}
	}
	return m, nil
}

func (m *topModel) View() string {
	var b strings.Builder
	tabs := "[1] channels  [2] network"
	if m.view == viewChannels {
		tabs = "[1] CHANNELS  [2] network"
	} else {
		tabs = "[1] channels  [2] NETWORK"
	}
	fmt.Fprintf(&b, "ncclient top  %s  s: sort (%s)  q: quit\n", tabs, channelSorts[m.sortBy].name)
	if m.st == nil {
		if m.err != nil {
			fmt.Fprintf(&b, "\nserver: %v\n", oneLine(m.err))
		} else {
			b.WriteString("\nasking the server…\n")
		}
		return b.String()
	}
	st := m.st
	fmt.Fprintf(&b, "node %s, up %s, %d agents, at %s\n\n", st.NodeID, st.Uptime.Round(time.Second), st.Agents, m.at.Format(time.TimeOnly))
	if m.view == viewChannels {
		m.channelsView(&b, st)
	} else {
		m.networkView(&b, st.Network)
		backboneView(&b, st.Backbone)
	}
	if m.err != nil {
		fmt.Fprintf(&b, "\nserver: %v (showing the figures of %s)\n", oneLine(m.err), m.at.Format(time.TimeOnly))
	}
	return b.String()
}

const channelRow = "%-16s %6s %10s %10s %10s %10s %9s %8s %6s\n"

func (m *topModel) channelsView(b *strings.Builder, st *control.Stats) {
	fmt.Fprintf(b, channelRow, "CHANNEL", "AGENTS", "MSGS/S IN", "BYTES/S IN", "MSGS/S OUT", "BYTES/S OUT", "DROPPED", "DROPS/S", "SLOW")
	chans := append([]control.ChannelStats(nil), st.Channels...)
	if key := channelSorts[m.sortBy].key; key != nil {
		sort.SliceStable(chans, func(i, j int) bool { return key(chans[i]) > key(chans[j]) })
	}
	row := func(c control.ChannelStats, name string) {
		r := c.Rates
		if r == nil {
			fmt.Fprintf(b, channelRow, name, fmt.Sprint(c.Agents), "-", "-", "-", "-", fmt.Sprint(c.Dropped), "-", fmt.Sprint(c.Slow))
			return
		}
		fmt.Fprintf(b, channelRow, name, fmt.Sprint(c.Agents), fmt.Sprintf("%.1f", r.MsgsIn), bytesText(r.BytesIn),
			fmt.Sprintf("%.1f", r.MsgsOut), bytesText(r.BytesOut), fmt.Sprint(c.Dropped), fmt.Sprintf("%.1f", r.Dropped), fmt.Sprint(c.Slow))
	}
	for _, c := range chans {
		row(c, c.Name)
	}
	row(st.Totals, "TOTAL")
}

const peerRow = "%-16s %-12s %-21s %10s %10s %9s %9s %8s\n"

func (m *topModel) networkView(b *strings.Builder, n *control.NetStats) {
	if n == nil {
		b.WriteString("network: off (connecttonet is false)\n")
		return
	}
	sealed := "PLAINTEXT"
	if n.Sealed {
		sealed = "sealed"
	}
	fmt.Fprintf(b, "network %s, node %s (%s) at %s, %s\n", n.Group, n.Node, n.Name, n.Addr, sealed)
	if r := n.Rates; r != nil {
		fmt.Fprintf(b, "sent %.1f/s (not sent %.1f/s), received %.1f/s, rejected %.1f/s, retransmits %.1f/s\n",
			r.Sent, r.SendDropped, r.Received, r.Rejected, r.Retransmits)
	}
	var rejected []string
	for reason, v := range n.Rejected {
		rejected = append(rejected, fmt.Sprintf("%s %d", reason, v))
	}
	sort.Strings(rejected)
	if len(rejected) > 0 {
		fmt.Fprintf(b, "rejected datagrams: %s\n", strings.Join(rejected, ", "))
	}
	b.WriteString("\n")
	fmt.Fprintf(b, peerRow, "PEER", "NAME", "ADDR", "MSGS/S", "DGRAMS/S", "RECOVERED", "LOST", "SEEN")
	peers := append([]control.NetPeerStats(nil), n.Peers...)
	sort.SliceStable(peers, func(i, j int) bool { return peerRate(peers[i]) > peerRate(peers[j]) })
	for _, p := range peers {
		msgs, dgrams := "-", "-"
		if p.Rates != nil {
			msgs, dgrams = fmt.Sprintf("%.1f", p.Rates.Delivered), fmt.Sprintf("%.1f", p.Rates.Datagrams)
		}
		seen := "-"
		if !p.LastSeen.IsZero() {
			seen = time.Since(p.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(b, peerRow, short(p.Node, 16), short(p.Name, 12), short(p.Addr, 21), msgs, dgrams, fmt.Sprint(p.Recovered), fmt.Sprint(p.LostMessages), seen)
	}
	if len(peers) == 0 {
		b.WriteString("no peers seen\n")
	}
}

// backboneView shows the NATS backbone, when the server runs one.
func backboneView(b *strings.Builder, bb *control.BackboneStats) {
	if bb == nil {
		return
	}
	fmt.Fprintf(b, "\nbackbone NATS: %s", strings.ToUpper(bb.State))
	if bb.URL != "" {
		fmt.Fprintf(b, " to %s", bb.URL)
	}
	fmt.Fprintf(b, ", reconnects %d\n", bb.Reconnects)
	if bb.LastError != "" {
		fmt.Fprintf(b, "last error: %s\n", bb.LastError)
	}
	fmt.Fprintf(b, "out %d msgs (%s), in %d msgs (%s), buffered %s, dropped %d, lost %d, durable %d\n",
		bb.MsgsOut, bytesText(float64(bb.BytesOut)), bb.MsgsIn, bytesText(float64(bb.BytesIn)),
		bytesText(float64(bb.Buffered)), bb.Dropped, bb.Lost, len(bb.Durable))
}

func peerRate(p control.NetPeerStats) float64 {
	if p.Rates == nil {
		return 0
	}
	return p.Rates.Delivered
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
