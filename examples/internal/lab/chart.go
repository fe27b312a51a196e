package lab

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// ErrInvalidChart reports a chart a reader could not read: no title, an
// axis label without its unit, a series without a name.
var ErrInvalidChart = errors.New("lab: invalid chart")

// Chart is a line chart of one or more series.
//
// The report draws it 960 px wide with its legend below the plot, and does
// for the reader what the data allow: an X axis whose values are
// log-spaced (10, 100, 1000) is drawn logarithmic, an axis with a dozen
// values or fewer has its ticks at the values, an axis in ns, µs, ms or s
// is shown in the unit that keeps its numbers short (50,000 ms becomes
// 50 s), and series that draw exactly the same line are drawn once, their
// names joined in the legend and marked "identical".
type Chart struct {
	Title string
	// XLabel and YLabel name each axis and end with its unit in
	// parentheses: "p99 latency (ms)", "offered load (× capacity)",
	// "shards (count)". [Chart.Validate] checks this.
	XLabel string
	YLabel string
	// LogY draws the Y axis logarithmic; zero and negative values are
	// left out.
	LogY   bool
	Series []Series
}

// Series is one line of a chart.
type Series struct {
	Name string
	X, Y []float64
	// Dashed draws the series dashed: a model, theory or reference line.
	// A dashed series named after the series before it plus a suffix
	// ("p99", then "p99 (theory)") takes that series' colour, so a
	// measurement and its model read as a pair; every other series gets a
	// colour of its own.
	Dashed bool
}

// Validate checks that a reader can read the chart: it has a title, each
// axis label ends with a unit in parentheses, and every series has a name
// of its own (the legend shows it) and as many X as Y values. The error
// wraps [ErrInvalidChart] and names the chart and the problem.
func (c *Chart) Validate() error {
	if strings.TrimSpace(c.Title) == "" {
		return fmt.Errorf("%w: a chart has no title (x axis %q)", ErrInvalidChart, c.XLabel)
	}
	for _, ax := range []struct{ name, label string }{{"x", c.XLabel}, {"y", c.YLabel}} {
		if _, _, ok := splitUnit(ax.label); !ok {
			return fmt.Errorf("%w: chart %q: %s axis label %q does not end with its unit in parentheses, e.g. \"latency (ms)\"", ErrInvalidChart, c.Title, ax.name, ax.label)
		}
	}
	if len(c.Series) == 0 {
		return fmt.Errorf("%w: chart %q has no series", ErrInvalidChart, c.Title)
	}
	seen := map[string]bool{}
	for i, s := range c.Series {
		switch {
		case strings.TrimSpace(s.Name) == "":
			return fmt.Errorf("%w: chart %q: series %d has no name for the legend", ErrInvalidChart, c.Title, i)
		case seen[s.Name]:
			return fmt.Errorf("%w: chart %q: two series are named %q", ErrInvalidChart, c.Title, s.Name)
		case len(s.X) != len(s.Y):
			return fmt.Errorf("%w: chart %q: series %q has %d x values and %d y values", ErrInvalidChart, c.Title, s.Name, len(s.X), len(s.Y))
		}
		seen[s.Name] = true
	}
	return nil
}

// splitUnit splits "p99 latency (ms)" into "p99 latency" and "ms". The unit
// may hold parentheses of its own: "keys moved (× the ideal 1/(n+1))".
func splitUnit(label string) (name, unit string, ok bool) {
	l := strings.TrimSpace(label)
	if !strings.HasSuffix(l, ")") {
		return l, "", false
	}
	depth := 0
	for i := len(l) - 1; i >= 0; i-- {
		switch l[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				name, unit = strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:len(l)-1])
				return name, unit, name != "" && unit != ""
			}
		}
	}
	return l, "", false
}

// Chart geometry: 10 × 5 inches of plot at 96 px per inch is 960 × 480 px;
// the legend adds rows below.
const (
	chartWidth      = 10 * vg.Inch
	plotHeight      = 5 * vg.Inch
	legendRowHeight = 18
	legendThumb     = 32
	legendMargin    = 12
)

var (
	chartFont   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	titleStyle  = font.From(chartFont, 15)
	labelStyle  = font.From(chartFont, 13)
	tickStyle   = font.From(chartFont, 12)
	legendStyle = font.From(chartFont, 12)
)

// palette is Tableau 10: ten colours told apart on screen and in print.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
	color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// markers tell series apart where colours are close or lines cross.
var markers = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{},
	draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

// line is one drawn line: one series, or several identical ones.
type line struct {
	name   string
	x, y   []float64
	color  color.Color
	dashes []vg.Length
	marker draw.GlyphDrawer
}

// lines merges identical series and gives each line its colour, marker
// and dashes.
func lines(c *Chart) []line {
	var out []line
	var dashed []bool
	var members [][]string
	for _, s := range c.Series {
		merged := false
		for i := range out {
			if dashed[i] == s.Dashed && sameData(out[i].x, out[i].y, s.X, s.Y) {
				members[i] = append(members[i], s.Name)
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, line{name: s.Name, x: s.X, y: s.Y})
			dashed = append(dashed, s.Dashed)
			members = append(members, []string{s.Name})
		}
	}
	colour := -1
	for i := range out {
		paired := i > 0 && dashed[i] && !dashed[i-1] && len(members[i]) == 1 && len(members[i-1]) == 1 &&
			strings.HasPrefix(out[i].name, out[i-1].name+" ")
		if !paired {
			colour++
		}
		out[i].color = palette[colour%len(palette)]
		out[i].marker = markers[i%len(markers)]
		switch {
		case dashed[i]:
			out[i].dashes = []vg.Length{vg.Points(7), vg.Points(4)}
		case colour >= len(palette):
			// Colours repeat past ten lines: the second round is dash-dotted.
			out[i].dashes = []vg.Length{vg.Points(9), vg.Points(3), vg.Points(2), vg.Points(3)}
		}
		if len(members[i]) > 1 {
			out[i].name = strings.Join(members[i], " = ") + " (identical)"
		}
	}
	return out
}

// sameData reports whether two series draw the same line.
func sameData(x1, y1, x2, y2 []float64) bool {
	if len(x1) != len(x2) || len(y1) != len(y2) {
		return false
	}
	eq := func(a, b float64) bool {
		return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	}
	for i := range x1 {
		if !eq(x1[i], x2[i]) || !eq(y1[i], y2[i]) {
			return false
		}
	}
	return true
}

// durationUnits are the units an axis in time may be shown in, largest first.
var durationUnits = []struct {
	name string
	ns   float64
}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}, {"ns", 1}}

// axisUnit returns the label and the factor to multiply values by so that
// an axis in time shows short numbers: the largest unit in which the
// largest value is at least 1. Other axes keep their label and values.
func axisUnit(label string, values []float64) (string, float64) {
	name, unit, ok := splitUnit(label)
	if !ok {
		return label, 1
	}
	if unit == "us" {
		unit = "µs"
	}
	from := slices.IndexFunc(durationUnits, func(u struct {
		name string
		ns   float64
	}) bool {
		return u.name == unit
	})
	if from < 0 {
		return label, 1
	}
	peak := 0.0
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			peak = math.Max(peak, math.Abs(v))
		}
	}
	if peak == 0 {
		return label, 1
	}
	peakNs := peak * durationUnits[from].ns
	for _, u := range durationUnits {
		if peakNs >= u.ns {
			return name + " (" + u.name + ")", durationUnits[from].ns / u.ns
		}
	}
	return label, 1
}

// distinct returns the sorted distinct finite values (positive ones only
// when positive is set).
func distinct(vals []float64, positive bool) []float64 {
	var out []float64
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) || positive && v <= 0 {
			continue
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// logSpaced reports whether sorted distinct values are spaced by ratios
// rather than by differences (50, 500, 2500; 1, 10, 100, 1000) and span at
// least a decade: such values crowd into one corner of a linear axis.
func logSpaced(xs []float64) bool {
	if len(xs) < 3 || xs[0] <= 0 || xs[len(xs)-1]/xs[0] < 10 {
		return false
	}
	lin := make([]float64, len(xs)-1)
	lg := make([]float64, len(xs)-1)
	for i := range lin {
		lin[i] = xs[i+1] - xs[i]
		lg[i] = math.Log(xs[i+1] / xs[i])
	}
	return spread(lg) < spread(lin)
}

// spread is the coefficient of variation: how uneven the gaps are.
func spread(v []float64) float64 {
	var sum, sq float64
	for _, x := range v {
		sum += x
	}
	mean := sum / float64(len(v))
	for _, x := range v {
		sq += (x - mean) * (x - mean)
	}
	return math.Sqrt(sq/float64(len(v))) / mean
}

// maxDataTicks is how many distinct values an axis may have and still get
// one tick per value.
const maxDataTicks = 12

// dataTicks puts a tick at each data value. A label that would crowd the
// one before it is left off (the tick stays).
type dataTicks struct {
	values []float64
	log    bool
}

func (d dataTicks) Ticks(lo, hi float64) []plot.Tick {
	pos := func(v float64) float64 {
		if d.log {
			return (math.Log(v) - math.Log(lo)) / (math.Log(hi) - math.Log(lo))
		}
		return (v - lo) / (hi - lo)
	}
	var ticks []plot.Tick
	last := math.Inf(-1)
	for _, v := range d.values {
		if v < lo || v > hi {
			continue
		}
		t := plot.Tick{Value: v}
		if p := pos(v); hi == lo || p-last >= 0.05 {
			t.Label, last = tickLabel(v), p
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// logTicks labels 1, 2 and 5 times each power of ten; an axis that spans
// too little for three such labels gets a label at every tick.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	var ticks []plot.Tick
	labelled := 0
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = tickLabel(v)
				labelled++
			}
			ticks = append(ticks, t)
		}
	}
	if labelled < 3 {
		for i := range ticks {
			ticks[i].Label = tickLabel(ticks[i].Value)
		}
	}
	return ticks
}

// linearTicks labels round values, about eight to an axis.
type linearTicks struct{}

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep(lo, hi)
	if step == 0 {
		return []plot.Tick{{Value: lo, Label: tickLabel(lo)}}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v)})
	}
	return ticks
}

// niceStep is 1, 2, 2.5 or 5 times a power of ten, giving about eight
// steps from lo to hi.
func niceStep(lo, hi float64) float64 {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		return 0
	}
	raw := span / 8
	base := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*base >= raw {
			return m * base
		}
	}
	return 10 * base
}

// widen stretches a linear axis out to the round values around its data,
// so the highest and lowest data have a labelled tick beyond them.
func widen(ax *plot.Axis) {
	if step := niceStep(ax.Min, ax.Max); step > 0 {
		ax.Min = math.Floor(ax.Min/step) * step
		ax.Max = math.Ceil(ax.Max/step) * step
	}
}

// tickLabel prints a value with at most four significant digits and no
// exponent for everyday magnitudes: 0.05, 2500, 1.25e+06.
func tickLabel(v float64) string {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	if err != nil {
		r = v
	}
	if a := math.Abs(r); a != 0 && (a >= 1e6 || a < 1e-3) {
		return strconv.FormatFloat(r, 'g', -1, 64)
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// RenderSVG draws a chart as an SVG document with gonum/plot: the plot on
// top, the legend below it.
func RenderSVG(c *Chart) ([]byte, error) {
	for _, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("series %q has %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
	}
	ls := lines(c)
	var allX, allY []float64
	for _, l := range ls {
		allX, allY = append(allX, l.x...), append(allY, l.y...)
	}
	xLabel, xf := axisUnit(c.XLabel, allX)
	yLabel, yf := axisUnit(c.YLabel, allY)
	xs := distinct(allX, false)
	logX := logSpaced(xs)

	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font = titleStyle
	p.Title.Padding = vg.Points(6)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = labelStyle
		ax.Tick.Label.Font = tickStyle
	}
	// The Y label is drawn by drawYLabel: gonum/plot centres it on the
	// arithmetic middle of the data, which on a log axis is near the top,
	// and then shrinks the plot to fit it.
	p.X.Label.Text = xLabel
	p.Add(plotter.NewGrid())
	p.X.Tick.Marker = linearTicks{}
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	}
	if len(xs) <= maxDataTicks {
		scaled := make([]float64, len(xs))
		for i, x := range xs {
			scaled[i] = x * xf
		}
		p.X.Tick.Marker = dataTicks{values: scaled, log: logX}
	}
	p.Y.Tick.Marker = linearTicks{}
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}

	var legend []line
	for i, l := range ls {
		pts := make(plotter.XYs, 0, len(l.x))
		for j := range l.x {
			x, y := l.x[j]*xf, l.y[j]*yf
			if math.IsNaN(x) || math.IsNaN(y) || logX && !(x > 0) || c.LogY && !(y > 0) {
				continue // a log axis cannot show zero; NaN is a missing point
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
		}
		legend = append(legend, l)
		if len(pts) == 0 {
			continue
		}
		ln, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", l.name, err)
		}
		ln.LineStyle = draw.LineStyle{Color: l.color, Width: vg.Points(2), Dashes: l.dashes}
		p.Add(ln)
		// Long series get a marker every few points, each series at its
		// own offset, so lines that run together still show their markers.
		marked := pts
		if step := (len(pts) + 11) / 12; step > 1 {
			marked = nil
			for j := (i * step / max(len(ls), 1)) % step; j < len(pts); j += step {
				marked = append(marked, pts[j])
			}
		}
		sc, err := plotter.NewScatter(marked)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", l.name, err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: l.color, Radius: vg.Points(3.5), Shape: l.marker}
		p.Add(sc)
	}

	if !logX && len(xs) > maxDataTicks {
		widen(&p.X)
	}
	if !c.LogY {
		widen(&p.Y)
	}

	rows := layoutLegend(legend)
	height := plotHeight + vg.Length(len(rows))*legendRowHeight + legendMargin
	canvas := vgsvg.New(chartWidth, height)
	dc := draw.New(canvas)
	yLabelStyle := text.Style{Color: color.Black, Font: labelStyle, Handler: plot.DefaultTextHandler,
		Rotation: math.Pi / 2, XAlign: draw.XCenter, YAlign: draw.YTop}
	left := 6 + yLabelStyle.Height(yLabel) + 6
	p.Draw(draw.Crop(dc, left, -16, height-plotHeight, -8))
	// Centred on the plot area between the X axis (about 40 pt) and the
	// title (about 25 pt).
	dc.FillText(yLabelStyle, vg.Point{X: 6, Y: height - plotHeight + (40+plotHeight-25)/2}, yLabel)
	drawLegend(dc, rows, height-plotHeight)

	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type legendCell struct {
	line
	x vg.Length
}

var legendText = text.Style{Color: color.Black, Font: legendStyle, Handler: plot.DefaultTextHandler, YAlign: draw.YCenter}

// layoutLegend flows the legend's entries into rows across the chart.
func layoutLegend(ls []line) [][]legendCell {
	var rows [][]legendCell
	var row []legendCell
	x := vg.Length(legendMargin)
	for _, l := range ls {
		w := legendThumb + 6 + legendText.Width(l.name) + 18
		if len(row) > 0 && x+w > chartWidth-legendMargin {
			rows, row, x = append(rows, row), nil, legendMargin
		}
		row = append(row, legendCell{line: l, x: x})
		x += w
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows
}

// drawLegend draws the rows in the strip of the given height at the bottom.
func drawLegend(dc draw.Canvas, rows [][]legendCell, strip vg.Length) {
	for r, row := range rows {
		y := strip - legendMargin/2 - (vg.Length(r)+0.5)*legendRowHeight
		for _, c := range row {
			dc.StrokeLine2(draw.LineStyle{Color: c.color, Width: vg.Points(2), Dashes: c.dashes}, c.x, y, c.x+legendThumb, y)
			dc.DrawGlyphNoClip(draw.GlyphStyle{Color: c.color, Radius: vg.Points(3.5), Shape: c.marker}, vg.Point{X: c.x + legendThumb/2, Y: y})
			dc.FillText(legendText, vg.Point{X: c.x + legendThumb + 6, Y: y}, c.name)
		}
	}
}
