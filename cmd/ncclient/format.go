package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netcluster/netcluster/control"
)

// printJSON prints a JSON document indented, for -json.
func printJSON(w io.Writer, doc []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "  "); err != nil {
		return fmt.Errorf("unreadable result: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// member is one key of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// members decodes a JSON object keeping the order of its keys, which
// encoding/json's maps lose.
func members(doc []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key: t.(string), val: v})
	}
	return out, nil
}

// scalar shows a JSON value in a table cell: strings unquoted unless
// empty, anything else as compact JSON.
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil && s != "" {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

// printConfig shows the configuration as a table of keys and a table of
// channels, in the order the server gives them: keys added later show
// without a change here.
func printConfig(w io.Writer, doc []byte) error {
	top, err := members(doc)
	if err != nil {
		return fmt.Errorf("unreadable config: %w", err)
	}
	tw := newTable(w)
	var chans []member
	for _, m := range top {
		if m.key == "channels" {
			if chans, err = members(m.val); err != nil {
				return fmt.Errorf("unreadable config channels: %w", err)
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", m.key, scalar(m.val))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nchannels:\n")
	tw = newTable(w)
	for i, ch := range chans {
		flags, err := members(ch.val)
		if err != nil {
			return fmt.Errorf("unreadable config of channel %s: %w", ch.key, err)
		}
		if i == 0 {
			fmt.Fprint(tw, "NAME")
			for _, f := range flags {
				fmt.Fprintf(tw, "\t%s", strings.ToUpper(f.key))
			}
			fmt.Fprintln(tw)
		}
		fmt.Fprint(tw, ch.key)
		for _, f := range flags {
			fmt.Fprintf(tw, "\t%s", scalar(f.val))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func wireName(legacy bool) string {
	if legacy {
		return "legacy"
	}
	return "native"
}

func unknownInt(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}

func patterns(p []string) string {
	if len(p) == 0 {
		return "-"
	}
	return strings.Join(p, " ")
}

// since shows a time and how long ago it was.
func since(t time.Time) string {
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), time.Since(t).Round(time.Second))
}

func printChannel(w io.Writer, ci *control.ChannelInfo) error {
	fmt.Fprintf(w, "channel %s", ci.Name)
	if ci.Path != "" {
		fmt.Fprintf(w, " at %s", ci.Path)
	}
	fmt.Fprintf(w, "\nmessages in %d (%d bytes), delivered %d (%d bytes), dropped %d, slow consumers %d\n",
		ci.MsgsIn, ci.BytesIn, ci.MsgsOut, ci.BytesOut, ci.Dropped, ci.Slow)
	printCallCounters(w, &ci.ChannelCounters)
	if len(ci.Groups) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "GROUP\tPATTERN\tMEMBERS")
		for _, g := range ci.Groups {
			var ms []string
			for _, m := range g.Members {
				ms = append(ms, fmt.Sprintf("%s/%d", m.Agent, m.SID))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.Pattern, strings.Join(ms, " "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(ci.Agents) == 0 {
		fmt.Fprintln(w, "no agents")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tPID\tUID\tWIRE\tSINCE\tIN\tOUT\tDROPPED\tPATTERNS")
	for _, a := range ci.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", a.ID, unknownInt(a.PID), unknownInt(a.UID),
			wireName(a.Legacy), a.Since.Local().Format(time.DateTime), a.MsgsIn, a.MsgsOut, a.Dropped, patterns(a.Patterns))
	}
	return tw.Flush()
}

func printAgent(w io.Writer, a *control.AgentInfo) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "agent\t%s\n", a.ID)
	fmt.Fprintf(tw, "channel\t%s\n", a.Channel)
	fmt.Fprintf(tw, "pid\t%s\n", unknownInt(a.PID))
	fmt.Fprintf(tw, "uid\t%s\n", unknownInt(a.UID))
	fmt.Fprintf(tw, "wire\t%s\n", wireName(a.Legacy))
	fmt.Fprintf(tw, "connected\t%s\n", since(a.Since))
	fmt.Fprintf(tw, "patterns\t%s\n", patterns(a.Patterns))
	fmt.Fprintf(tw, "messages in\t%d\n", a.MsgsIn)
	fmt.Fprintf(tw, "messages out\t%d (%d bytes)\n", a.MsgsOut, a.BytesOut)
	fmt.Fprintf(tw, "dropped\t%d\n", a.Dropped)
	fmt.Fprintf(tw, "buffer\t%d of %d bytes queued\n", a.Queued, a.BufferCap)
	fmt.Fprintf(tw, "protocol\t%s\n", protocolName(a.Version))
	for _, q := range a.Queues {
		fmt.Fprintf(tw, "queue group\t%s, pattern %s (sid %d)\n", q.Group, q.Pattern, q.SID)
	}
	if len(a.Queues) > 0 || a.QueueMsgs > 0 {
		fmt.Fprintf(tw, "queue messages\t%d\n", a.QueueMsgs)
	}
	return tw.Flush()
}

// printCallCounters shows a channel's request and queue group counters,
// if any is not zero.
func printCallCounters(w io.Writer, c *control.ChannelCounters) {
	if c.Requests+c.Replies+c.QueueMsgs+c.QueueLost == 0 {
		return
	}
	fmt.Fprintf(w, "requests %d, no responders %d, replies %d (dropped %d), queue messages %d, redispatched %d, lost %d\n",
		c.Requests, c.NoResponders, c.Replies, c.RepliesDropped, c.QueueMsgs, c.Redispatched, c.QueueLost)
}

func protocolName(v int) string {
	if v == 0 {
		return "legacy JSON"
	}
	return fmt.Sprintf("version %d", v)
}

func printStats(w io.Writer, st *control.Stats) error {
	fmt.Fprintf(w, "node %s, up %s (since %s), %d agents\n",
		st.NodeID, st.Uptime.Round(time.Second), st.Started.Local().Format(time.DateTime), st.Agents)
	tw := newTable(w)
	fmt.Fprintln(tw, "CHANNEL\tAGENTS\tMSGS IN\tBYTES IN\tMSGS OUT\tBYTES OUT\tDROPPED\tSLOW\tREQUESTS\tNO RESP\tREPLIES\tREDISPATCHED")
	row := func(c control.ChannelStats, name string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", name, c.Agents, c.MsgsIn, c.BytesIn, c.MsgsOut, c.BytesOut, c.Dropped, c.Slow,
			c.Requests, c.NoResponders, c.Replies, c.Redispatched)
	}
	for _, c := range st.Channels {
		row(c, c.Name)
	}
	row(st.Totals, "TOTAL")
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Network != nil {
		if err := printNetwork(w, st.Network); err != nil {
			return err
		}
	}
	if st.Backbone != nil {
		printBackbone(w, st.Backbone)
	}
	return nil
}

// printBackbone shows the NATS backbone part of stats.
func printBackbone(w io.Writer, b *control.BackboneStats) {
	where := b.URL
	if where == "" {
		where = "no server"
	}
	fmt.Fprintf(w, "\nnats: %s, %s, reconnects %d\n", b.State, where, b.Reconnects)
	if b.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", b.LastError)
	}
	fmt.Fprintf(w, "out %d msgs (%d bytes), buffered %d bytes, dropped %d; in %d msgs (%d bytes), routed %d, unknown channel %d, refused %d, lost %d, duplicates %d, malformed %d\n",
		b.MsgsOut, b.BytesOut, b.Buffered, b.Dropped, b.MsgsIn, b.BytesIn, b.Routed, b.Unknown, b.Refused, b.Lost, b.Duplicates, b.Malformed)
	fmt.Fprintf(w, "subjects: %s\n", strings.Join(b.Subjects, " "))
	if len(b.Durable) > 0 {
		fmt.Fprintf(w, "durable channels consuming: %s\n", strings.Join(b.Durable, " "))
	}
	if len(b.Groups) > 0 {
		fmt.Fprintf(w, "queue groups (%d msgs picked here, %d requeued): %s\n", b.QueueIn, b.Requeued, strings.Join(b.Groups, ", "))
	}
}

// printNetwork shows the network side of stats: this node's counters,
// rejected datagrams by reason, and a table of peers.
func printNetwork(w io.Writer, n *control.NetStats) error {
	sealed := "plaintext"
	if n.Sealed {
		sealed = "sealed"
	}
	fmt.Fprintf(w, "\nnetwork: node %s (%s) at %s, %s, %s\n", n.Node, n.Name, n.Addr, n.Group, sealed)
	fmt.Fprintf(w, "sent %d (not sent %d), received %d (routed %d, unknown channel %d, refused %d, malformed %d)\n",
		n.Sent, n.SendDropped, n.Received, n.Routed, n.UnknownChannel, n.Refused, n.Malformed)
	fmt.Fprintf(w, "datagrams %d (%d bytes), retransmits %d, naks in %d, unavailable %d, queue full %d, write errors %d, echoes %d\n",
		n.Datagrams, n.Bytes, n.Retransmits, n.NaksIn, n.Unavailable, n.QueueFull, n.WriteErrors, n.Echoes)
	fmt.Fprintf(w, "memory held for other nodes %d of %d bytes (netmemory), peers evicted %d\n", n.Memory, n.MemoryLimit, n.Evicted)
	if len(n.Rejected) > 0 {
		reasons := slices.Sorted(maps.Keys(n.Rejected))
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %d", r, n.Rejected[r])
		}
		fmt.Fprintf(w, "rejected datagrams: %s\n", strings.Join(parts, ", "))
	}
	if len(n.Peers) == 0 {
		fmt.Fprintln(w, "no peers seen")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PEER\tNAME\tADDR\tLAST SEEN\tNEXT SEQ\tDELIVERED\tRECOVERED\tLOST DATAGRAMS\tLOST MSGS\tRESTARTS")
	for _, p := range n.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Node, p.Name, p.Addr,
			p.LastSeen.Local().Format(time.DateTime), p.NextSeq, p.Delivered, p.Recovered, p.LostDatagrams, p.LostMessages, p.Restarts)
	}
	return tw.Flush()
}
