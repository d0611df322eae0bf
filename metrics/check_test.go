package metrics

import (
	"fmt"
	"strings"
)

// checkExposition checks the shape of a text exposition that a parser
// may let pass: every sample's family has one HELP and one TYPE line,
// before its samples; a family's lines are together (one family written
// twice fails); no series (name and labels) twice; families are sorted
// by name. Summary samples (_sum, _count) belong to their family.
func checkExposition(text string) error {
	type fam struct{ help, typ, samples int }
	fams := map[string]*fam{}
	var order []string // families in the order they start
	current := ""
	series := map[string]bool{}
	start := func(name string) (*fam, error) {
		f := fams[name]
		if f == nil {
			f = &fam{}
			fams[name] = f
			order = append(order, name)
		} else if name != current {
			return nil, fmt.Errorf("family %s written twice", name)
		}
		current = name
		return f, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return fmt.Errorf("the last line has no newline")
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
			name, _, _ := strings.Cut(line[len("# HELP "):], " ")
			f, err := start(name)
			if err != nil {
				return err
			}
			if line[2] == 'H' {
				if f.help++; f.help > 1 || f.typ > 0 || f.samples > 0 {
					return fmt.Errorf("%s: HELP twice or after TYPE or samples", name)
				}
			} else if f.typ++; f.typ > 1 || f.samples > 0 {
				return fmt.Errorf("%s: TYPE twice or after samples", name)
			}
		case strings.HasPrefix(line, "#"), line == "":
			return fmt.Errorf("unexpected line %q", line)
		default:
			// The series is the line up to its value: the last "} ",
			// or the first space without labels.
			key := line[:strings.IndexByte(line, ' ')]
			if i := strings.LastIndex(line, "} "); i >= 0 {
				key = line[:i+1]
			}
			if series[key] {
				return fmt.Errorf("series %q twice", key)
			}
			series[key] = true
			name := line[:strings.IndexAny(line, "{ ")]
			if _, ok := fams[name]; !ok || name != current {
				// A summary's _sum and _count lines.
				for _, sfx := range []string{"_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, sfx); ok && base == current {
						name = base
					}
				}
			}
			f, err := start(name)
			if err != nil {
				return err
			}
			if f.help != 1 || f.typ != 1 {
				return fmt.Errorf("%s: a sample without HELP and TYPE before it", name)
			}
			f.samples++
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			return fmt.Errorf("families out of order: %s before %s", order[i-1], order[i])
		}
	}
	for _, name := range order {
		if fams[name].samples == 0 {
			return fmt.Errorf("%s: no samples", name)
		}
	}
	return nil
}
