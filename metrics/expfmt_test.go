package metrics

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the parser refuses the exposition: %v\n%s", err, text)
	}
	return mf
}

func TestAppendFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {0.25, "0.25"},
		{1e6, "1000000"}, {12345678, "12345678"}, {1796310907.46, "1796310907.46"},
		{math.MaxUint64, "18446744073709551616"}, {math.MaxInt64, "9223372036854775808"},
		{1e21, "1e+21"}, {1e-7, "1e-07"}, {1.5e-6, "0.0000015"}, {-3e30, "-3e+30"},
		{math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"},
	} {
		got := string(appendFloat(nil, c.f))
		if got != c.want {
			t.Errorf("appendFloat(%v) = %q; want %q", c.f, got, c.want)
		}
		// The parser reads it back to the same value.
		if v, err := strconv.ParseFloat(got, 64); err != nil || (v != c.f && !(math.IsNaN(v) && math.IsNaN(c.f))) {
			t.Errorf("ParseFloat(%q) = %v, %v; want %v", got, v, err, c.f)
		}
	}
}

// Label values and help with the characters the format escapes, and
// invalid UTF-8, come back from the real parser as written.
func TestEscaping(t *testing.T) {
	d := &desc{name: "x_total", help: "back\\slash, \"quote\" and\nnewline", typ: counter, labels: []string{"peer", "name"}, order: []int{1, 0}}
	var e exposition
	e.add(d, 1, "p1", "a\"b\\c\nd")
	e.add(d, 2, "p2", "bad\xffbyte")
	text := string(e.appendText(nil))
	want := `# HELP x_total back\\slash, "quote" and\nnewline
# TYPE x_total counter
x_total{name="a\"b\\c\nd",peer="p1"} 1
x_total{name="bad` + "\uFFFD" + `byte",peer="p2"} 2
`
	if text != want {
		t.Fatalf("exposition\n%s\nwant\n%s", text, want)
	}
	if err := checkExposition(text); err != nil {
		t.Fatal(err)
	}
	f := parse(t, text)["x_total"]
	if f.GetHelp() != d.help || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("help %q type %v", f.GetHelp(), f.GetType())
	}
	names := map[string]string{}
	for _, m := range f.GetMetric() {
		var peer, name string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "peer":
				peer = l.GetValue()
			case "name":
				name = l.GetValue()
			}
		}
		names[peer] = name
	}
	if names["p1"] != "a\"b\\c\nd" || names["p2"] != "bad\uFFFDbyte" {
		t.Errorf("label values read back %q", names)
	}
}

// Families come sorted by name, each once, samples by label values.
func TestOrder(t *testing.T) {
	b := &desc{name: "b", help: "b.", typ: gauge, labels: []string{"channel"}, order: []int{0}}
	a := &desc{name: "a", help: "a.", typ: counter}
	var e exposition
	e.add(b, 2, "Z")
	e.add(a, 1)
	e.add(b, 3, "A")
	e.addSummary(&desc{name: "s_seconds", help: "s.", typ: summary}, &summaryValue{q: []float64{0, 0.5, 1}, v: []float64{1, 2, 3}, sum: 6, count: 3})
	text := string(e.appendText(nil))
	want := `# HELP a a.
# TYPE a counter
a 1
# HELP b b.
# TYPE b gauge
b{channel="A"} 3
b{channel="Z"} 2
# HELP s_seconds s.
# TYPE s_seconds summary
s_seconds{quantile="0"} 1
s_seconds{quantile="0.5"} 2
s_seconds{quantile="1"} 3
s_seconds_sum 6
s_seconds_count 3
`
	if text != want {
		t.Fatalf("exposition\n%s\nwant\n%s", text, want)
	}
	if err := checkExposition(text); err != nil {
		t.Fatal(err)
	}
	s := parse(t, text)["s_seconds"].GetMetric()[0].GetSummary()
	if s.GetSampleCount() != 3 || s.GetSampleSum() != 6 || len(s.GetQuantile()) != 3 {
		t.Errorf("summary read back %v", s)
	}
}

// checkExposition fails what it is there to catch.
func TestCheckExposition(t *testing.T) {
	for name, text := range map[string]string{
		"written twice":    "# HELP a a.\n# TYPE a gauge\na 1\n# HELP b b.\n# TYPE b gauge\nb 1\n# HELP a a.\n# TYPE a gauge\na 2\n",
		"samples apart":    "# HELP a a.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b b.\n# TYPE b gauge\nb 1\na{x=\"2\"} 2\n",
		"no HELP":          "# TYPE a gauge\na 1\n",
		"no TYPE":          "# HELP a a.\na 1\n",
		"TYPE twice":       "# HELP a a.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
		"unsorted":         "# HELP b b.\n# TYPE b gauge\nb 1\n# HELP a a.\n# TYPE a gauge\na 1\n",
		"no samples":       "# HELP a a.\n# TYPE a gauge\n",
		"no newline":       "# HELP a a.\n# TYPE a gauge\na 1",
		"a bare comment":   "# HELP a a.\n# TYPE a gauge\n# hi\na 1\n",
		"unlabelled twice": "# HELP a a.\n# TYPE a gauge\na 1\na 2\n",
		"series twice":     "# HELP a a.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
	} {
		if err := checkExposition(text); err == nil {
			t.Errorf("%s: checkExposition passes\n%s", name, text)
		}
	}
}

// Every family declared has a valid, unique name, valid label names, a
// help and a type: two declarations of one name would write it twice.
func TestDescs(t *testing.T) {
	metricName := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName := regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, d := range descs {
		if !metricName.MatchString(d.name) || seen[d.name] {
			t.Errorf("family name %q invalid or declared twice", d.name)
		}
		seen[d.name] = true
		if d.help == "" || (d.typ != counter && d.typ != gauge && d.typ != summary) {
			t.Errorf("%s: help %q, type %q", d.name, d.help, d.typ)
		}
		if d.typ == counter && !strings.HasSuffix(d.name, "_total") {
			t.Errorf("counter %s does not end in _total", d.name)
		}
		for _, l := range d.labels {
			if !labelName.MatchString(l) || strings.HasPrefix(l, "__") || l == "quantile" {
				t.Errorf("%s: label name %q", d.name, l)
			}
		}
		for i := 1; i < len(d.order); i++ {
			if d.labels[d.order[i-1]] >= d.labels[d.order[i]] {
				t.Errorf("%s: label names %q repeated or not sorted by order", d.name, d.labels)
			}
		}
	}
	if len(descs) < 87 {
		t.Errorf("%d families declared; want the server's 51, the runtime's 29 and the process's 7", len(descs))
	}
}
