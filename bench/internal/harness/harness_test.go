package harness

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as its own worker, as ncbench does.
func TestMain(m *testing.M) {
	if code, ok := Child(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestScenarios runs every scenario once per system at a tiny count: the
// harness works end to end, against both systems.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and worker processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := New(ctx, Options{Exe: exe, Rounds: 1, Scale: 0.002, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, sc := range Scenarios(1) {
		want += 2
		if sc.Ceiling {
			want-- // the relay alone
		}
	}
	if len(res.Runs) != want {
		t.Fatalf("%d runs, want %d", len(res.Runs), want)
	}
	for _, r := range res.Runs {
		t.Run(r.Scenario+"/"+string(r.System), func(t *testing.T) {
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			if len(r.Sample.Values) == 0 || r.Sample.Values[0] <= 0 {
				t.Fatalf("no measure: %+v", r.Sample)
			}
			if r.Sample.Lost > 0 {
				t.Errorf("%d messages neither received nor reported dropped", r.Sample.Lost)
			}
		})
	}

	dir := t.TempDir()
	if err := res.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "latest.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("latest.png: %v", err)
	}
	var table bytes.Buffer
	res.WriteTable(&table)
	for _, sc := range res.Scenarios {
		if !strings.Contains(table.String(), "| "+sc.ID+" |") {
			t.Errorf("table lacks %s:\n%s", sc.ID, table.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %d) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %d", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}
