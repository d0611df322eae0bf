package metrics

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The Prometheus text exposition format, version 0.0.4, written with the
// standard library: the Prometheus client (with protobuf, procfs and its
// model) cost ncserver 3.8 MiB of resident memory at idle for a page of
// text (issue 14).
//
//	# HELP name help, with \ and newline escaped
//	# TYPE name counter|gauge|summary
//	name{label="value, with \ \" and newline escaped",...} value
//
// Families are written sorted by name, each once, with its samples sorted
// by label values, labels sorted by name: the order client_golang wrote,
// so a scrape reads the same as before.

// contentType is the exposition's media type; Prometheus picks the parser
// by it.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric types of a family.
const (
	counter = "counter"
	gauge   = "gauge"
	summary = "summary"
)

// A desc is the fixed part of a metric family: name, help, type and label
// names. Each is declared once, with newDesc.
type desc struct {
	name, help, typ string
	labels          []string // label names, in the order add takes values
	order           []int    // indexes into labels, sorted by name
}

// descs are all the families declared: a test checks their names are
// valid and unique, so no family is written twice.
var descs []*desc

func newDesc(name, help, typ string, labels ...string) *desc {
	d := &desc{name: name, help: help, typ: typ, labels: labels, order: make([]int, len(labels))}
	for i := range d.order {
		d.order[i] = i
	}
	slices.SortFunc(d.order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	descs = append(descs, d)
	return d
}

// A sample is one line of a family (a summary's several lines).
type sample struct {
	d      *desc
	values []string // label values, as d.labels
	v      float64
	sum    *summaryValue // for d.typ == summary
}

// summaryValue is a summary's quantiles (their q label and value), sum
// and count.
type summaryValue struct {
	q, v  []float64
	sum   float64
	count uint64
}

// An exposition gathers the samples of one scrape.
type exposition struct {
	samples []sample
}

// add adds the sample of d with value v and label values as d's labels.
func (e *exposition) add(d *desc, v float64, values ...string) {
	if len(values) != len(d.labels) {
		panic("metrics: " + d.name + ": " + strconv.Itoa(len(values)) + " label values for " + strconv.Itoa(len(d.labels)) + " labels")
	}
	e.samples = append(e.samples, sample{d: d, values: values, v: v})
}

// addSummary adds the summary d (no labels of its own).
func (e *exposition) addSummary(d *desc, s *summaryValue) {
	e.samples = append(e.samples, sample{d: d, sum: s})
}

// compareSamples orders by family name, then by label values in the
// order of the label names.
func compareSamples(a, b sample) int {
	if c := strings.Compare(a.d.name, b.d.name); c != 0 {
		return c
	}
	for _, i := range a.d.order {
		if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
			return c
		}
	}
	return 0
}

// appendText appends the exposition to b: each family with samples, once,
// with its HELP and TYPE; families without samples are left out, as
// client_golang did (a channel's rates before their first sample, the
// network's figures without the network).
func (e *exposition) appendText(b []byte) []byte {
	slices.SortStableFunc(e.samples, compareSamples)
	var last *desc
	for _, s := range e.samples {
		d := s.d
		if d != last {
			b = append(b, "# HELP "...)
			b = append(b, d.name...)
			b = append(b, ' ')
			b = appendEscaped(b, d.help, false)
			b = append(b, "\n# TYPE "...)
			b = append(b, d.name...)
			b = append(b, ' ')
			b = append(b, d.typ...)
			b = append(b, '\n')
			last = d
		}
		if s.sum != nil {
			b = appendSummary(b, d.name, s.sum)
			continue
		}
		b = append(b, d.name...)
		for n, i := range d.order {
			if n == 0 {
				b = append(b, '{')
			} else {
				b = append(b, ',')
			}
			b = appendLabel(b, d.labels[i], s.values[i])
		}
		if len(d.order) > 0 {
			b = append(b, '}')
		}
		b = append(b, ' ')
		b = appendFloat(b, s.v)
		b = append(b, '\n')
	}
	return b
}

func appendSummary(b []byte, name string, s *summaryValue) []byte {
	for i, q := range s.q {
		b = append(b, name...)
		b = append(b, `{quantile="`...)
		b = appendFloat(b, q)
		b = append(b, `"} `...)
		b = appendFloat(b, s.v[i])
		b = append(b, '\n')
	}
	b = append(b, name...)
	b = append(b, "_sum "...)
	b = appendFloat(b, s.sum)
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, "_count "...)
	b = strconv.AppendUint(b, s.count, 10)
	return append(b, '\n')
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped appends s with backslash and newline escaped, and the
// double quote too in a label value. Invalid UTF-8 (a peer's name comes
// from the network) becomes U+FFFD: the parser refuses the whole scrape
// for one bad byte, and client_golang panicked on it.
func appendEscaped(b []byte, s string, label bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && label:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends f as the format reads it (Go's ParseFloat): NaN,
// +Inf, -Inf, and otherwise without an exponent between 1e-6 and 1e21, as
// encoding/json does, so counters and Unix times read as plain numbers
// (client_golang wrote 1.79631090746e+09).
func appendFloat(b []byte, f float64) []byte {
	switch abs := math.Abs(f); {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f == 0:
		return append(b, '0') // -0 too
	case abs >= 1 && abs < 1e21 && f == math.Trunc(f):
		return strconv.AppendFloat(b, f, 'f', 0, 64) // exact: 2^64 as 18446744073709551616
	case abs >= 1e-6 && abs < 1e21:
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	default:
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
}
