package harness

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Row is one metric of one scenario, both systems' medians side by side.
type Row struct {
	ID, Title      string
	Metric, Unit   string
	Lower          bool
	Ours, Theirs   float64 // medians; NaN if no run succeeded
	Ratio          float64 // Ours/Theirs
	Target         Target
	Met            string // "yes", "no" or "" (no target, or not measured)
	Versus         string // what the target compared, when not NATS
	Advantage      float64
	OursDrops      string
	TheirsDrops    string
	OursN, TheirsN int
}

// Rows computes the summary rows.
func (r *Results) Rows() []Row {
	var rows []Row
	for _, sc := range r.Scenarios {
		for i, m := range sc.Metrics {
			row := Row{ID: sc.ID, Title: sc.Title, Metric: m.Name, Unit: m.Unit, Lower: m.Lower, Target: m.Target}
			row.Ours, row.OursN = r.Median(sc.ID, Netcluster, i)
			row.Theirs, row.TheirsN = r.Median(sc.ID, NATS, i)
			if sc.Ceiling {
				row.Ours, row.OursN = r.Median(sc.ID, Relay, i)
				row.Theirs, row.TheirsN = math.NaN(), 0
			}
			row.Ratio = row.Ours / row.Theirs
			row.Advantage = row.Ratio
			if m.Lower {
				row.Advantage = 1 / row.Ratio
			}
			row.OursDrops = r.dropText(sc.ID, Netcluster)
			row.TheirsDrops = r.dropText(sc.ID, NATS)
			if sc.Ceiling {
				row.OursDrops, row.TheirsDrops = r.dropText(sc.ID, Relay), ""
			}
			met := func(ok bool) string {
				if ok {
					return "yes"
				}
				return "no"
			}
			switch t := m.Target; t.Kind {
			case RatioAtLeast:
				if !math.IsNaN(row.Ratio) {
					row.Met = met(row.Ratio >= t.Value)
				}
				if s0, _ := r.Median("S0", Relay, 0); sc.ID == "S1" && i == 0 && !math.IsNaN(s0) {
					row.Versus = fmt.Sprintf("ours %.0f %%, NATS %.0f %% of S0", 100*row.Ours/s0, 100*row.Theirs/s0)
				}
			case RatioAtMost:
				if !math.IsNaN(row.Ratio) {
					row.Met = met(row.Ratio <= t.Value)
				}
			case OfOurS1AtLeast:
				s1, _ := r.Median("S1", Netcluster, 0)
				if q := row.Ours / s1; !math.IsNaN(q) {
					row.Met = met(q >= t.Value)
					row.Versus = fmt.Sprintf("%.2f× our S1", q)
				}
			case AtMost:
				if !math.IsNaN(row.Ours) {
					row.Met = met(row.Ours <= t.Value)
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func (r *Results) dropText(id string, sys System) string {
	if sys != Relay && !containsSystem(r.Systems, sys) {
		return ""
	}
	d, l, f := r.Drops(id, sys)
	s := fmt.Sprintf("%d", d+l)
	if l > 0 {
		s = fmt.Sprintf("%d (lost %d)", d+l, l)
	}
	if f > 0 {
		s += fmt.Sprintf(", %d failed", f)
	}
	return s
}

func containsSystem(s []System, sys System) bool {
	for _, x := range s {
		if x == sys {
			return true
		}
	}
	return false
}

// formatValue prints v with about four significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func formatRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

// WriteTable writes the summary as a Markdown table.
func (r *Results) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "| | scenario | metric | netcluster | NATS | ours/NATS | target | met | dropped (ours / NATS) |\n")
	fmt.Fprintf(w, "|---|---|---|--:|--:|--:|---|---|---|\n")
	for _, row := range r.Rows() {
		target := row.Target.String()
		if row.Versus != "" {
			target += " (" + row.Versus + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n",
			row.ID, row.Title, row.Metric+" ("+row.Unit+")",
			formatValue(row.Ours), formatValue(row.Theirs), formatRatio(row.Ratio),
			target, row.Met, row.OursDrops, row.TheirsDrops)
	}
	fmt.Fprintf(w, "\nMedians of %d rounds per system, counts ×%g, %.0f s in all.\n", r.Rounds, r.Scale, r.Elapsed.Seconds())
	fmt.Fprintf(w, "Machine: %s.\n", r.Env)
}

// WriteFiles writes latest.csv (every run), summary.csv (the medians),
// latest.md (the table) and latest.png (the chart) into dir.
func (r *Results) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "latest.csv"), r.writeRunsCSV); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "summary.csv"), r.writeSummaryCSV); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "latest.md"), func(w io.Writer) error { r.WriteTable(w); return nil }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "latest.png"), r.WriteChart)
}

func writeFile(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(out); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return out.Close()
}

func ftoa(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func (r *Results) writeRunsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"scenario", "system", "round", "metric", "unit", "value", "dropped", "lost", "seconds", "error", "note", "load_before", "load_after"})
	byID := map[string]*Scenario{}
	for _, sc := range r.Scenarios {
		byID[sc.ID] = sc
	}
	for _, run := range r.Runs {
		sc := byID[run.Scenario]
		for i, m := range sc.Metrics {
			v := math.NaN()
			if i < len(run.Sample.Values) {
				v = run.Sample.Values[i]
			}
			cw.Write([]string{run.Scenario, string(run.System), strconv.Itoa(run.Round), m.Name, m.Unit, ftoa(v),
				strconv.FormatUint(run.Sample.Dropped, 10), strconv.FormatUint(run.Sample.Lost, 10),
				ftoa(run.Elapsed.Seconds()), run.Err, run.Sample.Note, run.LoadBefore, run.LoadAfter})
		}
	}
	cw.Flush()
	return cw.Error()
}

func (r *Results) writeSummaryCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"scenario", "title", "metric", "unit", "netcluster", "nats", "ratio", "target", "met", "dropped_netcluster", "dropped_nats"})
	for _, row := range r.Rows() {
		target := row.Target.String()
		if row.Versus != "" {
			target += " (" + row.Versus + ")"
		}
		cw.Write([]string{row.ID, row.Title, row.Metric, row.Unit, ftoa(row.Ours), ftoa(row.Theirs), ftoa(row.Ratio),
			strings.TrimSpace(target), row.Met, row.OursDrops, row.TheirsDrops})
	}
	cw.Flush()
	return cw.Error()
}
