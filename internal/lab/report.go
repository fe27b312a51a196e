package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PrepareOut makes sure dir exists and is writable, before any experiment
// runs, so a bad -out fails in a second rather than after minutes of work.
func PrepareOut(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty output directory", ErrOutput)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w to %q: %v", ErrOutput, dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%w to %q: %v", ErrOutput, dir, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

// ReportMeta describes the run in the report's header.
type ReportMeta struct {
	Seed  uint64
	Quick bool
	When  time.Time
}

// WriteReport writes index.html (tables and SVG charts, no external
// assets) and results.json to dir. Each file is written to a temporary name
// and renamed into place, so a failure never leaves a half-written report.
func WriteReport(dir string, meta ReportMeta, outcomes []Outcome) error {
	page, err := renderHTML(meta, outcomes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOutput, err)
	}
	js, err := renderJSON(meta, outcomes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOutput, err)
	}
	if err := PrepareOut(dir); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"index.html": page, "results.json": js} {
		if err := writeAtomic(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("%w: %v", ErrOutput, err)
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

type jsonExperiment struct {
	Name, Group, Title, Section, Guide string
	WallClock                          bool
	Seconds                            float64
	Tables                             []*Table
	Charts                             []*Chart
	Notes                              []string
}

func renderJSON(meta ReportMeta, outcomes []Outcome) ([]byte, error) {
	doc := struct {
		Seed        uint64
		Quick       bool
		Experiments []jsonExperiment
	}{Seed: meta.Seed, Quick: meta.Quick}
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		e := o.Experiment
		doc.Experiments = append(doc.Experiments, jsonExperiment{
			Name: e.Name, Group: e.Group, Title: e.Title, Section: e.Section, Guide: e.Guide,
			WallClock: e.WallClock, Seconds: o.Elapsed.Seconds(),
			Tables: o.Result.Tables, Charts: o.Result.Charts, Notes: o.Result.Notes,
		})
	}
	return json.MarshalIndent(doc, "", "  ")
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sysdesign trade-off lab</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
blockquote{border-left:4px solid #8ab;margin:0;padding:.2em 1em;color:#445;background:#f4f8fa}
table{border-collapse:collapse;margin:1em 0;font-size:90%}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}
caption{text-align:left;font-weight:600;padding:.3em 0}
nav a{margin-right:1em}
.meta{color:#666;font-size:90%}
.chart{margin:1em 0}
.key{display:inline-block;margin-right:1.2em;font-size:85%}
.swatch{display:inline-block;width:2em;border-top:3px solid;vertical-align:middle;margin-right:.4em}
.swatch.dashed{border-top-style:dashed}
</style></head><body>
<h1>sysdesign trade-off lab</h1>
<p class="meta">seed {{.Meta.Seed}}{{if .Meta.Quick}}, quick run{{end}}, {{len .Items}} experiments, generated {{.Meta.When.Format "2006-01-02 15:04 MST"}}</p>
<nav>{{range .Items}}<a href="#{{.Name}}">{{.Name}}</a>{{end}}</nav>
{{range .Items}}
<section id="{{.Name}}">
<h2>{{.Name}}: {{.Title}}</h2>
<blockquote>GUIDE.md, <em>{{.Section}}</em>: “{{.Guide}}”</blockquote>
{{if .WallClock}}<p class="meta">Measured on wall-clock time: numbers vary between runs.</p>{{end}}
{{range .Tables}}<table><caption>{{.Title}}</caption>
<tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}
</table>{{end}}
{{range .Charts}}<figure class="chart">{{.SVG}}<figcaption>{{range .Legend}}<span class="key"><span class="swatch{{if .Dashed}} dashed{{end}}" style="border-color:{{.Color}}"></span>{{.Name}}</span>{{end}}</figcaption></figure>{{end}}
{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="meta">ran in {{.Elapsed}}</p>
</section>
{{end}}
</body></html>
`))

type htmlChart struct {
	SVG    template.HTML
	Legend []htmlKey
}

type htmlKey struct {
	Name   string
	Color  template.CSS
	Dashed bool
}

type htmlItem struct {
	Name, Title, Section, Guide string
	WallClock                   bool
	Tables                      []*Table
	Charts                      []htmlChart
	Notes                       []string
	Elapsed                     time.Duration
}

func renderHTML(meta ReportMeta, outcomes []Outcome) ([]byte, error) {
	var items []htmlItem
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		e := o.Experiment
		it := htmlItem{Name: e.Name, Title: e.Title, Section: e.Section, Guide: e.Guide, WallClock: e.WallClock,
			Tables: o.Result.Tables, Notes: o.Result.Notes, Elapsed: o.Elapsed.Round(time.Millisecond)}
		for _, c := range o.Result.Charts {
			svg, err := RenderSVG(c)
			if err != nil {
				return nil, fmt.Errorf("chart %q of %s: %w", c.Title, e.Name, err)
			}
			// The SVG comes from gonum/plot's own writer, not from user input.
			hc := htmlChart{SVG: template.HTML(svg)} //nolint:gosec
			for i, s := range c.Series {
				hc.Legend = append(hc.Legend, htmlKey{Name: s.Name, Color: template.CSS(SeriesColor(c, i)), Dashed: s.Dashed})
			}
			it.Charts = append(it.Charts, hc)
		}
		items = append(items, it)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, struct {
		Meta  ReportMeta
		Items []htmlItem
	}{meta, items}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
	color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// RenderSVG draws a chart as an SVG document with gonum/plot.
func RenderSVG(c *Chart) ([]byte, error) {
	p, err := buildPlot(c)
	if err != nil {
		return nil, err
	}
	w, err := p.WriterTo(7*vg.Inch, 4*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	// Drop the XML prolog so the SVG can be inlined in HTML.
	b := buf.Bytes()
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return b, nil
}

func buildPlot(c *Chart) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("series %q has %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if c.LogY && !(s.Y[j] > 0) || math.IsNaN(s.Y[j]) || math.IsNaN(s.X[j]) {
				continue // a log axis cannot show zero; NaN is a missing point
			}
			pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		col := seriesColor(c.Series, i)
		line.Color = col
		line.Width = vg.Points(1.5)
		points.Color = col
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			points.Shape = draw.CrossGlyph{}
		}
		p.Add(line, points)
	}
	return p, nil
}

// seriesColor gives each solid series the next palette colour; a dashed
// series shares the colour of the solid series before it.
func seriesColor(all []Series, i int) color.Color {
	n := -1
	for j := 0; j <= i; j++ {
		if !all[j].Dashed || j == 0 {
			n++
		}
	}
	return palette[n%len(palette)]
}

// SeriesColor returns the CSS colour of series i of c, for legends drawn
// outside the chart.
func SeriesColor(c *Chart, i int) string {
	r, g, b, _ := seriesColor(c.Series, i).RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// logTicks labels 1, 2 and 5 times each power of ten, so a log axis that
// spans less than a decade still has readable labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
