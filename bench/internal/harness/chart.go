package harness

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

var (
	colBG     = color.RGBA{255, 255, 255, 255}
	colText   = color.RGBA{30, 30, 30, 255}
	colFaint  = color.RGBA{110, 110, 110, 255}
	colGrid   = color.RGBA{200, 200, 200, 255}
	colMet    = color.RGBA{46, 160, 67, 255}
	colMissed = color.RGBA{207, 34, 46, 255}
	colPlain  = color.RGBA{80, 110, 160, 255}
	colTarget = color.RGBA{20, 20, 20, 255}
)

// WriteChart draws the summary as a PNG: one horizontal bar per metric,
// netcluster's advantage over NATS (ours/NATS for rates, NATS/ours for
// latency and memory, so longer is better for netcluster), with the
// parity line at 1× and a tick at each target set against NATS. A bar is
// green when its target is met, red when missed, blue without target.
func (r *Results) WriteChart(w io.Writer) error {
	rows := r.Rows()
	const (
		width   = 1100
		scale   = 2
		rowH    = 46
		top     = 80
		labelW  = 330
		barX    = labelW + 20
		barMaxW = width - barX - 140
	)
	height := top + rowH*len(rows) + 70
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fillRect(img, 0, 0, width, height, colBG)

	drawText(img, 20, 16, scale, "netcluster vs NATS: advantage per scenario (longer is better for netcluster)", colText)
	drawText(img, 20, 44, 1, fmt.Sprintf("rates: ours/NATS; latency and RSS: NATS/ours. Medians of %d rounds, counts x%g. Green: target met; red: missed; blue: no target vs NATS.", r.Rounds, r.Scale), colFaint)

	maxV := 1.5
	for _, row := range rows {
		if !math.IsNaN(row.Advantage) && !math.IsInf(row.Advantage, 0) {
			maxV = max(maxV, row.Advantage)
		}
		if t := chartTarget(row); t > 0 {
			maxV = max(maxV, t)
		}
	}
	maxV *= 1.05
	xOf := func(v float64) int { return barX + int(v/maxV*float64(barMaxW)) }

	// Grid: a faint line at each whole multiple, the parity line dashed.
	step := 1.0
	if maxV > 12 {
		step = math.Ceil(maxV / 10)
	}
	bottom := top + rowH*len(rows)
	for v := step; v < maxV; v += step {
		x := xOf(v)
		for y := top - 6; y < bottom; y++ {
			img.Set(x, y, colGrid)
		}
		drawText(img, x-textWidth(fmt.Sprintf("%gx", v), 1)/2, bottom+6, 1, fmt.Sprintf("%gx", v), colFaint)
	}
	for y := top - 6; y < bottom; y++ {
		if (y/4)%2 == 0 {
			fillRect(img, xOf(1)-1, y, 2, 1, colTarget)
		}
	}
	for y := top - 6; y < bottom; y++ {
		img.Set(barX, y, colText)
	}

	for i, row := range rows {
		y := top + i*rowH
		drawText(img, 20, y+4, scale, row.ID+" "+row.Metric, colText)
		drawText(img, 20, y+26, 1, row.Title, colFaint)
		if math.IsNaN(row.Advantage) || math.IsInf(row.Advantage, 0) {
			drawText(img, barX+8, y+12, scale, "not measured", colFaint)
			continue
		}
		c := colPlain
		switch row.Met {
		case "yes":
			c = colMet
		case "no":
			c = colMissed
		}
		fillRect(img, barX+1, y+8, xOf(row.Advantage)-barX, 20, c)
		labelX := xOf(row.Advantage) + 8
		if t := chartTarget(row); t > 0 {
			fillRect(img, xOf(t)-1, y+2, 3, 32, colTarget)
			labelX = max(labelX, xOf(t)+8)
		}
		drawText(img, labelX, y+10, scale, fmt.Sprintf("%.2fx", row.Advantage), colText)
		if chartTarget(row) == 0 && row.Met != "" {
			// The target is not set against NATS (S7, S8): say so.
			t := "target " + row.Target.String() + " " + row.Unit
			if row.Versus != "" {
				t = "target " + row.Target.String() + ", is " + row.Versus
			}
			drawText(img, labelX, y+30, 1, t+": "+row.Met, colFaint)
		}
	}
	drawText(img, 20, height-24, 1, "dashed line: parity with NATS (1x). black tick: the target against NATS.", colFaint)
	return png.Encode(w, img)
}

// chartTarget is the row's target on the chart's advantage scale, or 0
// when the target is not set against NATS.
func chartTarget(row Row) float64 {
	switch row.Target.Kind {
	case RatioAtLeast:
		return row.Target.Value
	case RatioAtMost:
		if row.Lower {
			return 1 / row.Target.Value
		}
	}
	return 0
}
