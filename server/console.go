package server

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/netcluster/netcluster/internal/netbus"
	"github.com/netcluster/netcluster/internal/wire"
)

// dumpDataLen is how much of a message's data a dumptoconsole line shows.
const dumpDataLen = 120

// consoleWriter writes dumptoconsole and dumpnet lines, one at a time.
type consoleWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// dump writes one line for a message emitted on channel:
//
//	2026-01-04T09:43:00.000Z A log agent=3f2a… data={"x":1}
func (cw *consoleWriter) dump(channel string, v *wire.MsgView) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	b := time.Now().UTC().AppendFormat(cw.buf[:0], "2006-01-02T15:04:05.000Z07:00")
	b = append(b, ' ')
	b = append(b, channel...)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, string(v.Event))
	b = append(b, " agent="...)
	b = append(b, v.Agent...)
	if len(v.Node) > 0 {
		b = append(b, " node="...)
		b = append(b, v.Node...)
	}
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(len(v.Data)), 10)
	b = append(b, " data="...)
	b = appendCut(b, v.Data, v.Flags&wire.FlagJSON != 0)
	b = append(b, '\n')
	cw.w.Write(b)
	cw.buf = b
}

// appendCut appends data made readable: JSON as it is, other bytes
// quoted, either way cut to dumpDataLen bytes with "…" marking the cut.
func appendCut(b, data []byte, isJSON bool) []byte {
	cut := len(data) > dumpDataLen
	if cut {
		data = data[:dumpDataLen]
		for len(data) > 0 && !utf8.Valid(data) { // do not split a rune
			data = data[:len(data)-1]
		}
	}
	if isJSON && utf8.Valid(data) {
		for _, r := range string(data) {
			if r == '\n' || r == '\r' {
				r = ' '
			}
			b = utf8.AppendRune(b, r)
		}
	} else {
		b = strconv.AppendQuote(b, string(data))
	}
	if cut {
		b = append(b, "…"...)
	}
	return b
}

// dumpNet writes the dumpnet line of a message received from the network,
// with dropped=REASON when it is not routed:
//
//	2026-01-04T09:43:00.000Z net node=3f2a… name="host2" from=10.0.0.2:40211 channel=A event="log" agent=… size=12
func (cw *consoleWriter) dumpNet(node string, from netbus.Peer, channel string, v *wire.MsgView, dropped string) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	b := time.Now().UTC().AppendFormat(cw.buf[:0], "2006-01-02T15:04:05.000Z07:00")
	b = append(b, " net node="...)
	b = append(b, node...)
	b = append(b, " name="...)
	b = strconv.AppendQuote(b, from.Name)
	b = append(b, " from="...)
	b = from.Addr.AppendTo(b)
	b = append(b, " channel="...)
	b = append(b, channel...)
	b = append(b, " event="...)
	b = strconv.AppendQuote(b, unsafeString(v.Event))
	b = append(b, " agent="...)
	b = append(b, v.Agent...)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(len(v.Data)), 10)
	if dropped != "" {
		b = append(b, " dropped="...)
		b = append(b, dropped...)
	}
	b = append(b, '\n')
	cw.w.Write(b)
	cw.buf = b
}
